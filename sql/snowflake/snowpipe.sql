-- =============================================================================================
-- sql/snowflake/snowpipe.sql: OPTIONAL. Normalize the raw snapshots inside Snowflake.
--
-- The pipeline normally normalizes each window in Python (spotify_assets/lib/tables/normalize.py) and
-- loads the six tables from Dagster. This script is the other route, for those who prefer to
-- let Snowflake do it (as the seed project did with Snowpipe):
--
--   S3 raw/playlist_snapshots/window=.../v=<version>/<playlist_id>.json
--     --(storage integration, external stage, pipe with AUTO_INGEST)-->  RAW.PLAYLIST_SNAPSHOTS
--     --(stream)--> which windows received documents
--     --(task, every 8 hours when there is news: CALL RAW.NORMALIZE_PENDING_WINDOWS())-->
--   ANALYTICS.SONGS, ARTISTS, ALBUMS, SONG_ARTISTS, PLAYLISTS, PLAYLIST_TRACKS
--
-- The same six tables, the same columns and the same meaning as the Python normalizer; the
-- flattening is written as views (RAW.V_SONGS, RAW.V_ARTISTS, ...) that can be queried on their
-- own, and spotify_assets_tests/sql/test_snowpipe.py checks them against normalize.py.
-- Use ONE route per database: either let Dagster write the ANALYTICS tables, or this task.
--
-- Run sql/snowflake/setup.sql first (database, schemas, warehouse, role). Then run this whole
-- script as a user holding ACCOUNTADMIN (part 1 needs it) and SYSADMIN and SECURITYADMIN:
--   1. ACCOUNTADMIN   the storage integration (an account-level object) and EXECUTE TASK for
--                     SYSADMIN; then finish the AWS side (see "AWS" below);
--   2. SYSADMIN       everything in RAW (and the six tables); SYSADMIN owns and runs them;
--   3. SECURITYADMIN  hands the six tables to the pipeline's role, as if the pipeline had
--                     created them, so that its analytics views can read them.
-- Idempotent: IF NOT EXISTS for what holds state (raw table, pipe, stream, tables), OR
-- REPLACE for pure definitions (views, procedure, task).
--
-- ---------------------------------------------------------------------------------------------
-- EDIT HERE: the session variables just below, and these placeholders (each appears once or
-- twice, always inside a string literal; search and replace them):
--   <SPOTIFY_ASSETS_S3_BUCKET>   the bucket the pipeline writes raw snapshots to
--   spotify-assets/              SPOTIFY_ASSETS_S3_PREFIX (default 'spotify-assets') plus '/'
--   <AWS_ACCOUNT_ID>             the AWS account of the IAM role Snowflake assumes
--   <SNOWFLAKE_S3_ROLE>          that IAM role's name (read access to the prefix)
-- The task's WAREHOUSE is a plain name (SPOTIFY_WH): Snowflake takes no variable there.
--
-- AWS (after part 1): DESC INTEGRATION SPOTIFY_RAW_S3 gives STORAGE_AWS_IAM_USER_ARN and
-- STORAGE_AWS_EXTERNAL_ID: put them in the IAM role's trust policy. The role needs
-- s3:GetObject and s3:GetObjectVersion on the prefix and s3:ListBucket on the bucket.
-- After part 2: SHOW PIPES gives the pipe's notification_channel (an SQS ARN): add an S3
-- event notification (s3:ObjectCreated:*, prefix <prefix>raw/playlist_snapshots/) to it.
-- Documents written before the notification exists: ALTER PIPE RAW.PLAYLIST_SNAPSHOTS_PIPE
-- REFRESH loads those of the last 7 days; older ones need a one-off COPY INTO with the same
-- SELECT as the pipe.
--
-- ---------------------------------------------------------------------------------------------
-- Which documents count. The Python route reads each window through its manifest
-- (raw/playlist_snapshots/_manifests/window=....json), which names the committed version.
-- Snowpipe cannot follow that: the manifest is rewritten in place under the same key when a
-- window is re-materialized, and Snowpipe never loads a file name it has loaded before. So
-- here, for each window and playlist, the document of the NEWEST VERSION wins (the version is
-- the v=<version> directory, which starts with its UTC write time; among copies of one file,
-- the last loaded). That equals the committed manifest in every normal case: the first
-- write, and re-materializations that succeed. It differs when
--   * a re-materialization fails half-way: its documents are deleted from S3 but may already
--     have been loaded; they win over the committed ones until the window is rewritten;
--   * a playlist is dropped from the configuration and its window re-materialized: its older
--     document still counts here (delete it from RAW.PLAYLIST_SNAPSHOTS to drop it).
-- Manifests are not loaded (the pipe's PATTERN skips _manifests/).
-- =============================================================================================


SET db = 'SPOTIFY';                         -- as in setup.sql
SET pipeline_role = 'SPOTIFY_PIPELINE';     -- as in setup.sql


-- ---------------------------------------------------------------------------------------------
-- 1. ACCOUNTADMIN: storage integration; EXECUTE TASK for SYSADMIN (runs the task).
-- ---------------------------------------------------------------------------------------------
USE ROLE ACCOUNTADMIN;

CREATE STORAGE INTEGRATION IF NOT EXISTS SPOTIFY_RAW_S3
    TYPE = EXTERNAL_STAGE
    STORAGE_PROVIDER = 'S3'
    ENABLED = TRUE
    STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::<AWS_ACCOUNT_ID>:role/<SNOWFLAKE_S3_ROLE>'
    STORAGE_ALLOWED_LOCATIONS = ('s3://<SPOTIFY_ASSETS_S3_BUCKET>/spotify-assets/raw/playlist_snapshots/')
    COMMENT = 'spotify-assets: read-only access to the raw playlist snapshots';

GRANT USAGE ON INTEGRATION SPOTIFY_RAW_S3 TO ROLE SYSADMIN;
GRANT EXECUTE TASK ON ACCOUNT TO ROLE SYSADMIN;

-- STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID, for the IAM role's trust policy.
DESC INTEGRATION SPOTIFY_RAW_S3;


-- ---------------------------------------------------------------------------------------------
-- 2. SYSADMIN: file format, stage, raw table, pipe, the six tables, views, stream, procedure,
--    task.
-- ---------------------------------------------------------------------------------------------
USE ROLE SYSADMIN;
USE DATABASE IDENTIFIER($db);
CREATE SCHEMA IF NOT EXISTS RAW;

-- One JSON document per file, never an array of documents.
CREATE FILE FORMAT IF NOT EXISTS RAW.PLAYLIST_SNAPSHOT_JSON
    TYPE = JSON
    STRIP_OUTER_ARRAY = FALSE
    COMPRESSION = AUTO
    COMMENT = 'spotify-assets raw snapshot: one JSON document per file';

CREATE STAGE IF NOT EXISTS RAW.PLAYLIST_SNAPSHOTS_STAGE
    URL = 's3://<SPOTIFY_ASSETS_S3_BUCKET>/spotify-assets/raw/playlist_snapshots/'
    STORAGE_INTEGRATION = SPOTIFY_RAW_S3
    FILE_FORMAT = (FORMAT_NAME = 'RAW.PLAYLIST_SNAPSHOT_JSON')
    COMMENT = 'spotify-assets raw snapshots (window=<slug>/v=<version>/<playlist_id>.json)';

-- One row per loaded file. A document is one VARIANT: Snowflake caps a VARIANT's size (16 MB
-- on older accounts, more since 2025); a playlist beyond it fails its file's load (see
-- COPY_HISTORY), where the Python route would still read it.
CREATE TABLE IF NOT EXISTS RAW.PLAYLIST_SNAPSHOTS (
    document VARIANT NOT NULL,
    file_name VARCHAR NOT NULL,
    loaded_at TIMESTAMP_LTZ NOT NULL DEFAULT CURRENT_TIMESTAMP()
)
    COMMENT = 'spotify-assets raw snapshot documents, as loaded by RAW.PLAYLIST_SNAPSHOTS_PIPE';

-- METADATA$START_SCAN_TIME rather than CURRENT_TIMESTAMP(), which Snowflake advises against in
-- a pipe. PATTERN: documents only (window=.../v=.../x.json), not the manifests.
CREATE PIPE IF NOT EXISTS RAW.PLAYLIST_SNAPSHOTS_PIPE
    AUTO_INGEST = TRUE
    COMMENT = 'spotify-assets: raw snapshot documents from S3, as they arrive'
AS
COPY INTO RAW.PLAYLIST_SNAPSHOTS (document, file_name, loaded_at)
FROM (
    SELECT $1, METADATA$FILENAME, METADATA$START_SCAN_TIME
    FROM @RAW.PLAYLIST_SNAPSHOTS_STAGE
)
PATTERN = '.*window=[^/]+/v=[^/]+/[^/]+[.]json'
FILE_FORMAT = (FORMAT_NAME = 'RAW.PLAYLIST_SNAPSHOT_JSON');


-- The six tables, exactly as the pipeline declares them (spotify_assets/lib/tables/schema.py,
-- Table.snowflake_ddl); every row carries its window_start.
CREATE TABLE IF NOT EXISTS ANALYTICS.SONGS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    song_id VARCHAR NOT NULL,
    name VARCHAR,
    duration_ms NUMBER(19,0),
    url VARCHAR,
    popularity NUMBER(10,0),
    added_date TIMESTAMP_TZ(6),
    album_id VARCHAR,
    artist_id VARCHAR,
    artist_count NUMBER(10,0),
    explicit BOOLEAN,
    track_number NUMBER(10,0),
    disc_number NUMBER(10,0),
    isrc VARCHAR,
    is_playable BOOLEAN,
    uri VARCHAR,
    playlist_appearances NUMBER(10,0)
);

CREATE TABLE IF NOT EXISTS ANALYTICS.ARTISTS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    artist_id VARCHAR NOT NULL,
    name VARCHAR,
    url VARCHAR,
    uri VARCHAR,
    popularity NUMBER(10,0),
    followers NUMBER(19,0),
    genres VARCHAR
);

CREATE TABLE IF NOT EXISTS ANALYTICS.ALBUMS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    album_id VARCHAR NOT NULL,
    name VARCHAR,
    release_date VARCHAR,
    release_date_precision VARCHAR,
    release_year NUMBER(10,0),
    release_period_start DATE,
    release_period_end DATE,
    total_tracks NUMBER(10,0),
    url VARCHAR,
    uri VARCHAR,
    album_type VARCHAR,
    artist_id VARCHAR,
    popularity NUMBER(10,0),
    label VARCHAR
);

CREATE TABLE IF NOT EXISTS ANALYTICS.SONG_ARTISTS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    song_id VARCHAR NOT NULL,
    artist_position NUMBER(10,0) NOT NULL,
    artist_id VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS ANALYTICS.PLAYLISTS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    playlist_id VARCHAR NOT NULL,
    name VARCHAR,
    description VARCHAR,
    owner_id VARCHAR,
    owner_name VARCHAR,
    public BOOLEAN,
    collaborative BOOLEAN,
    snapshot_id VARCHAR,
    followers NUMBER(19,0),
    url VARCHAR,
    status VARCHAR NOT NULL,
    error_kind VARCHAR,
    error_message VARCHAR,
    rows_total NUMBER(10,0),
    rows_read NUMBER(10,0),
    song_rows NUMBER(10,0),
    episode_rows NUMBER(10,0),
    local_rows NUMBER(10,0),
    unavailable_rows NUMBER(10,0),
    other_rows NUMBER(10,0),
    repeated_song_rows NUMBER(10,0),
    extracted_at TIMESTAMP_TZ(6)
);

CREATE TABLE IF NOT EXISTS ANALYTICS.PLAYLIST_TRACKS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    playlist_id VARCHAR NOT NULL,
    position NUMBER(10,0) NOT NULL,
    song_id VARCHAR NOT NULL,
    added_at TIMESTAMP_TZ(6),
    added_by_id VARCHAR
);


-- ---------------------------------------------------------------------------------------------
-- The flattening, as views over RAW.PLAYLIST_SNAPSHOTS. Each V_<TABLE> has its table's
-- columns, in order, for every window at once; the procedure below inserts them window by
-- window. Notes on matching normalize.py:
--   * Timestamps are parsed with TRY_CAST(... AS TIMESTAMP_TZ): a value that is not a
--     timestamp becomes NULL, as in Python. A timestamp without an offset is read in the
--     session's TIMEZONE (Python reads it as UTC): the task sets TIMEZONE = 'UTC'.
--   * "First seen" (a song's, album's or artist's attributes when two rows disagree, and
--     the order of credits) follows the documents ordered by playlist_id, then row position.
--     normalize.py follows the order it is given the documents in (the manifest's). Within
--     one window the API describes a track the same way in every playlist, so this only
--     matters if it did not.
--   * normalize.py marks a document it cannot decode (a value of a type the API never sends)
--     'unreadable' and loads nothing from it; here such a value becomes NULL and the rest of
--     the document is used. Files that are not JSON never reach the raw table.
--   * A VARIANT JSON null is not SQL NULL: STRIP_NULL_VALUE turns it into one where the
--     difference matters (a row's item/track, an extraction error, genres).
-- ---------------------------------------------------------------------------------------------

-- The documents that count: per window and playlist, the newest version (see the header).
CREATE OR REPLACE VIEW RAW.V_CURRENT_DOCUMENTS AS
WITH documents AS (
    SELECT
        TRY_CAST(document:window.start::VARCHAR AS TIMESTAMP_TZ(6)) AS window_start,
        document:playlist_id::VARCHAR AS playlist_id,
        REGEXP_SUBSTR(file_name, '(^|/)v=([^/]+)/', 1, 1, 'e', 2) AS version,
        document,
        file_name,
        loaded_at
    FROM RAW.PLAYLIST_SNAPSHOTS
)
SELECT window_start, playlist_id, version, document, file_name, loaded_at
FROM documents
WHERE window_start IS NOT NULL AND playlist_id IS NOT NULL
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY window_start, playlist_id
    ORDER BY version DESC NULLS LAST, loaded_at DESC, file_name DESC
) = 1;

-- Every row of every readable playlist, classified as normalize.py does: the payload is
-- row.item, else row.track; none -> unavailable; row or payload is_local -> local; type
-- 'episode' -> episode; a type other than 'track' (missing means 'track') or no id -> other;
-- otherwise a song. Failed documents contribute no rows.
CREATE OR REPLACE VIEW RAW.V_PLAYLIST_ROWS AS
WITH items AS (
    SELECT
        d.window_start,
        d.playlist_id,
        r.index AS position,
        r.value AS item_row,
        COALESCE(STRIP_NULL_VALUE(r.value:item), STRIP_NULL_VALUE(r.value:track)) AS payload
    FROM RAW.V_CURRENT_DOCUMENTS d,
        LATERAL FLATTEN(input => d.document:items) r
    WHERE COALESCE(d.document:status::VARCHAR, 'ok') = 'ok'
        AND STRIP_NULL_VALUE(d.document:extraction.error) IS NULL
)
SELECT
    window_start,
    playlist_id,
    position,
    CASE
        WHEN payload IS NULL THEN 'unavailable'
        WHEN COALESCE(item_row:is_local::BOOLEAN, FALSE) OR COALESCE(payload:is_local::BOOLEAN, FALSE) THEN 'local'
        WHEN payload:type::VARCHAR = 'episode' THEN 'episode'
        WHEN COALESCE(NULLIF(payload:type::VARCHAR, ''), 'track') <> 'track' THEN 'other'
        WHEN NULLIF(payload:id::VARCHAR, '') IS NULL THEN 'other'
        ELSE 'song'
    END AS row_kind,
    NULLIF(payload:id::VARCHAR, '') AS item_id,
    TRY_CAST(item_row:added_at::VARCHAR AS TIMESTAMP_TZ(6)) AS added_at,
    item_row:added_by.id::VARCHAR AS added_by_id,
    payload
FROM items;

-- playlist_tracks: every song row, at its 0-based position; a song listed twice is two rows.
CREATE OR REPLACE VIEW RAW.V_PLAYLIST_TRACKS AS
SELECT
    window_start,
    playlist_id,
    position::NUMBER(10,0) AS position,
    item_id AS song_id,
    added_at,
    added_by_id
FROM RAW.V_PLAYLIST_ROWS
WHERE row_kind = 'song';

-- Helper: each song of a window once, described by its first row (first_playlist_id,
-- first_position), with its appearances and earliest added_at across the window.
CREATE OR REPLACE VIEW RAW.V_FIRST_SONGS AS
WITH song_rows AS (
    SELECT
        window_start,
        item_id AS song_id,
        playlist_id,
        position,
        payload,
        COUNT(*) OVER (PARTITION BY window_start, item_id) AS appearances,
        MIN(added_at) OVER (PARTITION BY window_start, item_id) AS added_date
    FROM RAW.V_PLAYLIST_ROWS
    WHERE row_kind = 'song'
)
SELECT
    window_start,
    song_id,
    payload,
    playlist_id AS first_playlist_id,
    position AS first_position,
    appearances,
    added_date
FROM song_rows
QUALIFY ROW_NUMBER() OVER (PARTITION BY window_start, song_id ORDER BY playlist_id, position) = 1;

-- song_artists: the song's credits in order, skipping credits without an id (position counts
-- only those kept, so position 0 is the song's artist_id).
CREATE OR REPLACE VIEW RAW.V_SONG_ARTISTS AS
SELECT
    s.window_start,
    s.song_id,
    (ROW_NUMBER() OVER (PARTITION BY s.window_start, s.song_id ORDER BY a.index) - 1)::NUMBER(10,0) AS artist_position,
    a.value:id::VARCHAR AS artist_id
FROM RAW.V_FIRST_SONGS s,
    LATERAL FLATTEN(input => s.payload:artists) a
WHERE NULLIF(a.value:id::VARCHAR, '') IS NOT NULL;

-- songs: the track's own first artist (not the album's), and how many rows list it.
CREATE OR REPLACE VIEW RAW.V_SONGS AS
SELECT
    s.window_start,
    s.song_id,
    s.payload:name::VARCHAR AS name,
    s.payload:duration_ms::NUMBER(19,0) AS duration_ms,
    s.payload:external_urls.spotify::VARCHAR AS url,
    s.payload:popularity::NUMBER(10,0) AS popularity,
    s.added_date,
    s.payload:album.id::VARCHAR AS album_id,
    first_credit.artist_id,
    COALESCE(ARRAY_SIZE(s.payload:artists), 0)::NUMBER(10,0) AS artist_count,
    s.payload:explicit::BOOLEAN AS explicit,
    s.payload:track_number::NUMBER(10,0) AS track_number,
    s.payload:disc_number::NUMBER(10,0) AS disc_number,
    s.payload:external_ids.isrc::VARCHAR AS isrc,
    s.payload:is_playable::BOOLEAN AS is_playable,
    COALESCE(NULLIF(s.payload:uri::VARCHAR, ''), 'spotify:track:' || s.song_id) AS uri,
    s.appearances::NUMBER(10,0) AS playlist_appearances
FROM RAW.V_FIRST_SONGS s
LEFT JOIN RAW.V_SONG_ARTISTS first_credit
    ON first_credit.window_start = s.window_start
    AND first_credit.song_id = s.song_id
    AND first_credit.artist_position = 0;

-- Helper: each album of a window once, as its first song (in first-seen order) gives it.
CREATE OR REPLACE VIEW RAW.V_FIRST_ALBUMS AS
SELECT
    window_start,
    payload:album.id::VARCHAR AS album_id,
    payload:album AS album,
    first_playlist_id,
    first_position
FROM RAW.V_FIRST_SONGS
WHERE NULLIF(payload:album.id::VARCHAR, '') IS NOT NULL
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY window_start, payload:album.id::VARCHAR
    ORDER BY first_playlist_id, first_position
) = 1;

-- albums: release_date kept as given; the period it denotes at its precision. '2002' is
-- 2002-01-01..2002-12-31 and '2002-05' is May 2002 (never TO_DATE('2002'), which is 1970);
-- the stated precision wins over the string's length; year 0000 or an unparseable value give
-- NULLs; an impossible month or day falls back to the whole year (as release_period() does).
CREATE OR REPLACE VIEW RAW.V_ALBUMS AS
WITH dates AS (
    SELECT
        f.*,
        TRIM(album:release_date::VARCHAR) AS trimmed,
        album:release_date_precision::VARCHAR AS date_precision
    FROM RAW.V_FIRST_ALBUMS f
), years AS (
    SELECT
        dates.*,
        IFF(
            REGEXP_LIKE(trimmed, '^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$'),
            NULLIF(TRY_TO_NUMBER(SUBSTR(trimmed, 1, 4)), 0),
            NULL
        ) AS y
    FROM dates
), months AS (
    SELECT
        years.*,
        IFF(
            y IS NOT NULL AND LENGTH(trimmed) >= 7 AND (date_precision IS NULL OR date_precision IN ('month', 'day')),
            TRY_TO_NUMBER(SUBSTR(trimmed, 6, 2)),
            NULL
        ) AS m
    FROM years
), days AS (
    SELECT
        months.*,
        IFF(
            m IS NOT NULL AND m <> 0 AND LENGTH(trimmed) = 10 AND (date_precision IS NULL OR date_precision = 'day'),
            TRY_TO_DATE(SUBSTR(trimmed, 1, 10), 'YYYY-MM-DD'),
            NULL
        ) AS day_date,
        m IS NOT NULL AND m <> 0 AND LENGTH(trimmed) = 10 AND (date_precision IS NULL OR date_precision = 'day') AS has_day,
        IFF(m BETWEEN 1 AND 12, TRY_TO_DATE(SUBSTR(trimmed, 1, 7) || '-01', 'YYYY-MM-DD'), NULL) AS month_start,
        IFF(y IS NOT NULL, TRY_TO_DATE(SUBSTR(trimmed, 1, 4) || '-01-01', 'YYYY-MM-DD'), NULL) AS year_start,
        IFF(y IS NOT NULL, TRY_TO_DATE(SUBSTR(trimmed, 1, 4) || '-12-31', 'YYYY-MM-DD'), NULL) AS year_end
    FROM months
), album_credits AS (
    SELECT f.window_start, f.album_id, a.value:id::VARCHAR AS artist_id
    FROM RAW.V_FIRST_ALBUMS f,
        LATERAL FLATTEN(input => f.album:artists) a
    WHERE NULLIF(a.value:id::VARCHAR, '') IS NOT NULL
    QUALIFY ROW_NUMBER() OVER (PARTITION BY f.window_start, f.album_id ORDER BY a.index) = 1
)
SELECT
    d.window_start,
    d.album_id,
    d.album:name::VARCHAR AS name,
    d.album:release_date::VARCHAR AS release_date,
    d.date_precision AS release_date_precision,
    d.y::NUMBER(10,0) AS release_year,
    CASE
        WHEN d.y IS NULL THEN NULL
        WHEN d.has_day THEN COALESCE(d.day_date, d.year_start)
        WHEN d.m IS NOT NULL THEN COALESCE(d.month_start, d.year_start)
        ELSE d.year_start
    END AS release_period_start,
    CASE
        WHEN d.y IS NULL THEN NULL
        WHEN d.has_day THEN COALESCE(d.day_date, d.year_end)
        WHEN d.m IS NOT NULL THEN COALESCE(LAST_DAY(d.month_start), d.year_end)
        ELSE d.year_end
    END AS release_period_end,
    d.album:total_tracks::NUMBER(10,0) AS total_tracks,
    d.album:external_urls.spotify::VARCHAR AS url,
    COALESCE(NULLIF(d.album:uri::VARCHAR, ''), 'spotify:album:' || d.album_id) AS uri,
    d.album:album_type::VARCHAR AS album_type,
    c.artist_id,
    d.album:popularity::NUMBER(10,0) AS popularity,
    d.album:label::VARCHAR AS label
FROM days d
LEFT JOIN album_credits c
    ON c.window_start = d.window_start AND c.album_id = d.album_id;

-- artists: everyone credited on a song or on an album. Described by the first credit: songs'
-- credits (in song order, then credit order) before albums' (in album order).
CREATE OR REPLACE VIEW RAW.V_ARTISTS AS
WITH credits AS (
    SELECT
        s.window_start,
        a.value AS artist,
        a.value:id::VARCHAR AS artist_id,
        0 AS source,
        s.first_playlist_id AS k_playlist,
        s.first_position AS k_position,
        a.index AS k_index
    FROM RAW.V_FIRST_SONGS s,
        LATERAL FLATTEN(input => s.payload:artists) a
    UNION ALL
    SELECT
        f.window_start,
        a.value,
        a.value:id::VARCHAR,
        1,
        f.first_playlist_id,
        f.first_position,
        a.index
    FROM RAW.V_FIRST_ALBUMS f,
        LATERAL FLATTEN(input => f.album:artists) a
)
SELECT
    window_start,
    artist_id,
    artist:name::VARCHAR AS name,
    artist:external_urls.spotify::VARCHAR AS url,
    COALESCE(NULLIF(artist:uri::VARCHAR, ''), 'spotify:artist:' || artist_id) AS uri,
    artist:popularity::NUMBER(10,0) AS popularity,
    artist:followers.total::NUMBER(19,0) AS followers,
    IFF(STRIP_NULL_VALUE(artist:genres) IS NULL, NULL, TO_JSON(artist:genres)) AS genres
FROM credits
WHERE NULLIF(artist_id, '') IS NOT NULL
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY window_start, artist_id
    ORDER BY source, k_playlist, k_position, k_index
) = 1;

-- playlists: one row per document, failed ones included (with why, and no row counts).
CREATE OR REPLACE VIEW RAW.V_PLAYLISTS AS
WITH documents AS (
    SELECT
        window_start,
        playlist_id,
        document AS doc,
        IFF(
            COALESCE(document:status::VARCHAR, 'ok') = 'ok' AND STRIP_NULL_VALUE(document:extraction.error) IS NULL,
            'ok',
            'failed'
        ) AS status
    FROM RAW.V_CURRENT_DOCUMENTS
), counts AS (
    SELECT
        window_start,
        playlist_id,
        COUNT_IF(row_kind = 'song') AS song_rows,
        COUNT_IF(row_kind = 'episode') AS episode_rows,
        COUNT_IF(row_kind = 'local') AS local_rows,
        COUNT_IF(row_kind = 'unavailable') AS unavailable_rows,
        COUNT_IF(row_kind = 'other') AS other_rows,
        COUNT_IF(row_kind = 'song') - COUNT(DISTINCT IFF(row_kind = 'song', item_id, NULL)) AS repeated_song_rows
    FROM RAW.V_PLAYLIST_ROWS
    GROUP BY window_start, playlist_id
)
SELECT
    d.window_start,
    d.playlist_id,
    d.doc:playlist.name::VARCHAR AS name,
    d.doc:playlist.description::VARCHAR AS description,
    d.doc:playlist.owner.id::VARCHAR AS owner_id,
    d.doc:playlist.owner.display_name::VARCHAR AS owner_name,
    d.doc:playlist.public::BOOLEAN AS public,
    d.doc:playlist.collaborative::BOOLEAN AS collaborative,
    d.doc:playlist.snapshot_id::VARCHAR AS snapshot_id,
    d.doc:playlist.followers.total::NUMBER(19,0) AS followers,
    d.doc:playlist.external_urls.spotify::VARCHAR AS url,
    d.status,
    IFF(d.status = 'ok', NULL, d.doc:extraction.error.kind::VARCHAR) AS error_kind,
    IFF(d.status = 'ok', NULL, d.doc:extraction.error.message::VARCHAR) AS error_message,
    d.doc:extraction.total::NUMBER(10,0) AS rows_total,
    COALESCE(ARRAY_SIZE(d.doc:items), 0)::NUMBER(10,0) AS rows_read,
    IFF(d.status = 'ok', COALESCE(c.song_rows, 0), NULL)::NUMBER(10,0) AS song_rows,
    IFF(d.status = 'ok', COALESCE(c.episode_rows, 0), NULL)::NUMBER(10,0) AS episode_rows,
    IFF(d.status = 'ok', COALESCE(c.local_rows, 0), NULL)::NUMBER(10,0) AS local_rows,
    IFF(d.status = 'ok', COALESCE(c.unavailable_rows, 0), NULL)::NUMBER(10,0) AS unavailable_rows,
    IFF(d.status = 'ok', COALESCE(c.other_rows, 0), NULL)::NUMBER(10,0) AS other_rows,
    IFF(d.status = 'ok', COALESCE(c.repeated_song_rows, 0), NULL)::NUMBER(10,0) AS repeated_song_rows,
    TRY_CAST(d.doc:extraction.extracted_at::VARCHAR AS TIMESTAMP_TZ(6)) AS extracted_at
FROM documents d
LEFT JOIN counts c
    ON c.window_start = d.window_start AND c.playlist_id = d.playlist_id;


-- ---------------------------------------------------------------------------------------------
-- Which windows to (re)build: the stream says which documents arrived since the task last
-- ran; their windows are queued in RAW.PENDING_WINDOWS and rebuilt whole, from all the
-- documents that count (not only the new ones), so a window whose documents arrive over
-- several runs ends up complete.
-- ---------------------------------------------------------------------------------------------
CREATE STREAM IF NOT EXISTS RAW.PLAYLIST_SNAPSHOTS_CHANGES
    ON TABLE RAW.PLAYLIST_SNAPSHOTS
    APPEND_ONLY = TRUE
    COMMENT = 'spotify-assets: documents loaded since the normalize task last committed';

-- Also the way to rebuild windows by hand:
--   INSERT INTO RAW.PENDING_WINDOWS (window_start)
--       SELECT DISTINCT window_start FROM RAW.V_CURRENT_DOCUMENTS;
--   CALL RAW.NORMALIZE_PENDING_WINDOWS();
CREATE TABLE IF NOT EXISTS RAW.PENDING_WINDOWS (
    window_start TIMESTAMP_TZ(6) NOT NULL,
    queued_at TIMESTAMP_LTZ NOT NULL DEFAULT CURRENT_TIMESTAMP()
)
    COMMENT = 'spotify-assets: windows waiting to be (re)built by RAW.NORMALIZE_PENDING_WINDOWS';

-- One transaction: queue the stream's windows (this consumes the stream), replace those
-- windows in all six tables (delete, insert), empty the queue, commit. A failure anywhere
-- rolls everything back, the stream included, so the next run retries the same windows;
-- readers see each window before or after, never half-replaced; other windows are untouched.
-- Owner's rights: it runs as SYSADMIN, which owns RAW and holds the pipeline role (so the
-- tables' privileges) through the role hierarchy set up by setup.sql.
CREATE OR REPLACE PROCEDURE RAW.NORMALIZE_PENDING_WINDOWS()
RETURNS VARCHAR
LANGUAGE SQL
COMMENT = 'spotify-assets: rebuild the six ANALYTICS tables for the windows the stream reports'
EXECUTE AS OWNER
AS
$$
BEGIN
    BEGIN TRANSACTION;

    INSERT INTO RAW.PENDING_WINDOWS (window_start)
        SELECT DISTINCT window_start
        FROM (
            SELECT TRY_CAST(document:window.start::VARCHAR AS TIMESTAMP_TZ(6)) AS window_start
            FROM RAW.PLAYLIST_SNAPSHOTS_CHANGES
        )
        WHERE window_start IS NOT NULL;

    DELETE FROM ANALYTICS.SONGS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.SONGS (window_start, song_id, name, duration_ms, url, popularity, added_date, album_id, artist_id, artist_count, explicit, track_number, disc_number, isrc, is_playable, uri, playlist_appearances)
        SELECT window_start, song_id, name, duration_ms, url, popularity, added_date, album_id, artist_id, artist_count, explicit, track_number, disc_number, isrc, is_playable, uri, playlist_appearances
        FROM RAW.V_SONGS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM ANALYTICS.ARTISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.ARTISTS (window_start, artist_id, name, url, uri, popularity, followers, genres)
        SELECT window_start, artist_id, name, url, uri, popularity, followers, genres
        FROM RAW.V_ARTISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM ANALYTICS.ALBUMS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.ALBUMS (window_start, album_id, name, release_date, release_date_precision, release_year, release_period_start, release_period_end, total_tracks, url, uri, album_type, artist_id, popularity, label)
        SELECT window_start, album_id, name, release_date, release_date_precision, release_year, release_period_start, release_period_end, total_tracks, url, uri, album_type, artist_id, popularity, label
        FROM RAW.V_ALBUMS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM ANALYTICS.SONG_ARTISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.SONG_ARTISTS (window_start, song_id, artist_position, artist_id)
        SELECT window_start, song_id, artist_position, artist_id
        FROM RAW.V_SONG_ARTISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM ANALYTICS.PLAYLISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.PLAYLISTS (window_start, playlist_id, name, description, owner_id, owner_name, public, collaborative, snapshot_id, followers, url, status, error_kind, error_message, rows_total, rows_read, song_rows, episode_rows, local_rows, unavailable_rows, other_rows, repeated_song_rows, extracted_at)
        SELECT window_start, playlist_id, name, description, owner_id, owner_name, public, collaborative, snapshot_id, followers, url, status, error_kind, error_message, rows_total, rows_read, song_rows, episode_rows, local_rows, unavailable_rows, other_rows, repeated_song_rows, extracted_at
        FROM RAW.V_PLAYLISTS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM ANALYTICS.PLAYLIST_TRACKS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);
    INSERT INTO ANALYTICS.PLAYLIST_TRACKS (window_start, playlist_id, position, song_id, added_at, added_by_id)
        SELECT window_start, playlist_id, position, song_id, added_at, added_by_id
        FROM RAW.V_PLAYLIST_TRACKS WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS);

    DELETE FROM RAW.PENDING_WINDOWS;

    COMMIT;
    RETURN 'normalized the pending windows';
EXCEPTION
    WHEN OTHER THEN
        ROLLBACK;
        RAISE;
END;
$$;

-- Every 8 hours, 30 minutes after each window closes (the pipeline runs at 00:00, 08:00 and
-- 16:00 UTC), and only when the stream has news: the WHEN check costs no warehouse time.
-- Backfills and re-materializations are picked up at the next tick; EXECUTE TASK
-- RAW.NORMALIZE_PLAYLIST_SNAPSHOTS runs it now. TIMEZONE = 'UTC': see the views' notes.
CREATE OR REPLACE TASK RAW.NORMALIZE_PLAYLIST_SNAPSHOTS
    WAREHOUSE = SPOTIFY_WH
    SCHEDULE = 'USING CRON 30 0,8,16 * * * UTC'
    TIMEZONE = 'UTC'
    COMMENT = 'spotify-assets: rebuild the windows whose documents arrived'
WHEN
    SYSTEM$STREAM_HAS_DATA('RAW.PLAYLIST_SNAPSHOTS_CHANGES')
AS
    CALL RAW.NORMALIZE_PENDING_WINDOWS();

-- A task is created suspended (and CREATE OR REPLACE suspends it again).
ALTER TASK RAW.NORMALIZE_PLAYLIST_SNAPSHOTS RESUME;

-- The pipe's SQS queue, for the S3 event notification: the notification_channel column.
SHOW PIPES LIKE 'PLAYLIST_SNAPSHOTS_PIPE' IN SCHEMA RAW;


-- ---------------------------------------------------------------------------------------------
-- 3. SECURITYADMIN: the six tables belong to the pipeline's role, as when the pipeline creates
--    them, so its analytics views can read them; SYSADMIN (the task) keeps writing them
--    through the role hierarchy. Re-running is a no-op.
-- ---------------------------------------------------------------------------------------------
USE ROLE SECURITYADMIN;
GRANT OWNERSHIP ON TABLE ANALYTICS.SONGS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE ANALYTICS.ARTISTS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE ANALYTICS.ALBUMS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE ANALYTICS.SONG_ARTISTS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE ANALYTICS.PLAYLISTS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE ANALYTICS.PLAYLIST_TRACKS TO ROLE IDENTIFIER($pipeline_role) COPY CURRENT GRANTS;
