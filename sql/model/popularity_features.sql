-- Features of the popularity forecast: one row per song and snapshot window, for the newest
-- {history_windows} windows, each describing the song as it stood at that window (t) and only
-- from what was known then: the song, its album and artist, its playlists, and its history in
-- earlier windows. `popularity` is the song's popularity at t (null where the API gave none, as
-- to Development Mode apps): the forecast's starting point, and, read at a later window of the
-- same song, its answer (lib/model/popularity.py pairs the rows). The artist's other songs'
-- mean popularity is taken within the same window and leaves the song itself out. DuckDB,
-- Snowflake and MySQL (translated) run it; `{schema}` is the warehouse schema.
WITH recent_windows AS (
    SELECT window_start
    FROM (SELECT DISTINCT window_start FROM {schema}.songs) AS listed
    ORDER BY window_start DESC
    LIMIT {history_windows}
),
since AS (
    SELECT MIN(window_start) AS first_window FROM recent_windows
),
song_windows AS (
    SELECT
        song_id,
        window_start,
        -- the newest earlier window that gave a popularity, and how many earlier windows did
        MAX(CASE WHEN popularity IS NOT NULL THEN window_start END) OVER (
            PARTITION BY song_id ORDER BY window_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_popularity_window,
        COUNT(popularity) OVER (
            PARTITION BY song_id ORDER BY window_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS popularity_windows_before,
        ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY window_start) - 1 AS windows_listed_before
    FROM {schema}.songs
),
positions AS (
    SELECT
        pt.song_id,
        pt.window_start,
        AVG(pt.position) AS mean_position,
        COUNT(DISTINCT pt.playlist_id) AS playlist_count
    FROM {schema}.playlist_tracks AS pt
    JOIN since ON pt.window_start >= since.first_window
    GROUP BY pt.song_id, pt.window_start
),
described AS (
    SELECT
        s.song_id,
        s.window_start,
        s.name,
        s.artist_id,
        s.popularity,
        s.duration_ms,
        s.explicit,
        s.track_number,
        s.disc_number,
        s.artist_count,
        al.album_type,
        al.total_tracks AS album_total_tracks,
        al.release_date_precision,
        -- from the middle of the release period (a year-only date is a whole year) to the window
        (CAST(s.window_start AS DATE) - al.release_period_start)
            - (al.release_period_end - al.release_period_start) / 2.0 AS release_age_days,
        s.playlist_appearances,
        po.playlist_count,
        po.mean_position,
        CAST(s.window_start AS DATE) - CAST(s.added_date AS DATE) AS days_since_added,
        p.popularity AS previous_popularity,
        sw.popularity_windows_before,
        sw.windows_listed_before
    FROM {schema}.songs AS s
    JOIN since ON s.window_start >= since.first_window
    JOIN song_windows AS sw
        ON sw.song_id = s.song_id
        AND sw.window_start = s.window_start
    LEFT JOIN {schema}.songs AS p
        ON p.song_id = s.song_id
        AND p.window_start = sw.previous_popularity_window
    LEFT JOIN {schema}.albums AS al
        ON al.album_id = s.album_id
        AND al.window_start = s.window_start
    LEFT JOIN positions AS po
        ON po.song_id = s.song_id
        AND po.window_start = s.window_start
)
SELECT
    d.*,
    COUNT(*) OVER (PARTITION BY d.artist_id, d.window_start) - 1 AS artist_other_songs,
    -- leave-one-out: the mean popularity of the artist's OTHER songs in the same window
    (SUM(d.popularity) OVER (PARTITION BY d.artist_id, d.window_start) - COALESCE(d.popularity, 0))
        / NULLIF(
            COUNT(d.popularity) OVER (PARTITION BY d.artist_id, d.window_start)
                - CASE WHEN d.popularity IS NULL THEN 0 ELSE 1 END,
            0
        ) AS artist_other_mean_popularity
FROM described AS d
ORDER BY d.window_start, d.song_id
