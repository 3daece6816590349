-- Per genre, over the current playlists: the artists credited on their songs that have the
-- genre, the songs (a song counts once per genre, however many of its artists have it), the
-- playlist rows that list those songs and, when a listening history exists (`streams` has
-- plays), the plays and minutes played of those songs over the whole history (null when it
-- has none; a play counts for each genre of its song). An artist's genres are those of the
-- newest window the API gave them in: only Extended Quota apps get genres (enrichment), so
-- without them the view has no rows. `artists.genres` is the compact JSON array the
-- normalization writes (`["indie pop","k-pop"]`); its elements are read by splitting at
-- '","', which both warehouses spell the same way (genres hold no quotes).
CREATE OR REPLACE VIEW {schema}.genres AS
WITH RECURSIVE genre_lists AS (
    SELECT
        artist_id,
        SUBSTR(genres, 3, LENGTH(genres) - 4) AS inner_text
    FROM (
        SELECT
            artist_id,
            genres,
            ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY window_start DESC) AS newest_first
        FROM {schema}.artists
        WHERE genres IS NOT NULL
    ) AS ranked
    WHERE newest_first = 1 AND LENGTH(genres) > 4
),
counted AS (
    SELECT
        artist_id,
        inner_text,
        CAST((LENGTH(inner_text) - LENGTH(REPLACE(inner_text, '","', ''))) / 3 AS INTEGER) + 1 AS genre_count
    FROM genre_lists
),
most AS (
    SELECT MAX(genre_count) AS genre_count FROM counted
),
positions (n) AS (
    SELECT CAST(1 AS INTEGER)
    UNION ALL
    SELECT CAST(p.n + 1 AS INTEGER)
    FROM positions AS p
    JOIN most AS m ON p.n < m.genre_count
),
artist_genres AS (
    SELECT DISTINCT
        c.artist_id,
        SPLIT_PART(c.inner_text, '","', p.n) AS genre
    FROM counted AS c
    JOIN positions AS p ON p.n <= c.genre_count
),
credited AS (
    SELECT DISTINCT
        sa.song_id,
        ag.artist_id,
        ag.genre
    FROM (SELECT DISTINCT song_id, artist_id FROM {schema}.song_artists) AS sa
    JOIN artist_genres AS ag ON ag.artist_id = sa.artist_id
),
genre_songs AS (
    SELECT DISTINCT song_id, genre FROM credited
),
listed AS (
    SELECT
        gs.genre,
        COUNT(*) AS song_count,
        CAST(SUM(cs.playlist_appearances) AS BIGINT) AS playlist_rows
    FROM genre_songs AS gs
    JOIN {schema}.current_songs AS cs ON cs.song_id = gs.song_id
    GROUP BY gs.genre
),
artists_listed AS (
    SELECT
        c.genre,
        COUNT(DISTINCT c.artist_id) AS artist_count
    FROM credited AS c
    JOIN {schema}.current_songs AS cs ON cs.song_id = c.song_id
    GROUP BY c.genre
),
played AS (
    SELECT
        gs.genre,
        COUNT(*) AS plays,
        SUM(s.ms_played) AS ms_played
    FROM genre_songs AS gs
    JOIN {schema}.streams AS s ON s.song_id = gs.song_id
    GROUP BY gs.genre
),
history AS (
    SELECT COUNT(*) AS plays FROM {schema}.streams
),
every_genre AS (
    SELECT genre FROM listed
    UNION
    SELECT genre FROM played
)
SELECT
    g.genre,
    COALESCE(a.artist_count, 0) AS artist_count,
    COALESCE(l.song_count, 0) AS song_count,
    COALESCE(l.playlist_rows, 0) AS playlist_rows,
    CASE WHEN h.plays > 0 THEN COALESCE(p.plays, 0) END AS plays,
    CASE WHEN h.plays > 0 THEN ROUND(COALESCE(p.ms_played, 0) / 60000.0, 2) END AS minutes_played
FROM every_genre AS g
LEFT JOIN listed AS l ON l.genre = g.genre
LEFT JOIN artists_listed AS a ON a.genre = g.genre
LEFT JOIN played AS p ON p.genre = g.genre
CROSS JOIN history AS h
-- an empty element ('[""]' or '["a",""]') is no genre; filtered here, last: fakesnow's DuckDB fails
-- to bind the same condition on the split's output when there are no genres at all
WHERE LENGTH(g.genre) > 0
