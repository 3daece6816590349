-- Features of the popularity model: one row per song, described at its snapshot window, the
-- newest window in which the API gave the song's popularity (then `popularity` is the target),
-- or, for a song never given one, its newest window (a row to predict). Only what both API
-- modes return, plus history: nothing here needs popularity except the target itself, the
-- song's own earlier popularity, and the artist's other songs' popularity, which leaves the
-- song itself out. DuckDB and Snowflake run it as it is; `{schema}` is the warehouse schema.
WITH song_windows AS (
    SELECT
        song_id,
        window_start,
        popularity,
        -- the newest earlier window that gave a popularity, and how many earlier windows did
        MAX(CASE WHEN popularity IS NOT NULL THEN window_start END) OVER (
            PARTITION BY song_id ORDER BY window_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_popularity_window,
        COUNT(popularity) OVER (
            PARTITION BY song_id ORDER BY window_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS popularity_windows_before,
        ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY window_start) - 1 AS windows_listed_before,
        ROW_NUMBER() OVER (
            PARTITION BY song_id
            ORDER BY CASE WHEN popularity IS NULL THEN 1 ELSE 0 END, window_start DESC
        ) AS newest_first
    FROM {schema}.songs
),
snapshots AS (
    SELECT
        w.song_id,
        w.window_start,
        w.popularity_windows_before,
        w.windows_listed_before,
        p.popularity AS previous_popularity
    FROM song_windows AS w
    LEFT JOIN {schema}.songs AS p
        ON p.song_id = w.song_id
        AND p.window_start = w.previous_popularity_window
    WHERE w.newest_first = 1
),
positions AS (
    SELECT
        pt.song_id,
        AVG(pt.position) AS mean_position,
        COUNT(DISTINCT pt.playlist_id) AS playlist_count
    FROM {schema}.playlist_tracks AS pt
    JOIN snapshots AS sn
        ON sn.song_id = pt.song_id
        AND sn.window_start = pt.window_start
    GROUP BY pt.song_id
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
        sn.previous_popularity,
        sn.popularity_windows_before,
        sn.windows_listed_before
    FROM snapshots AS sn
    JOIN {schema}.songs AS s
        ON s.song_id = sn.song_id
        AND s.window_start = sn.window_start
    LEFT JOIN {schema}.albums AS al
        ON al.album_id = s.album_id
        AND al.window_start = s.window_start
    LEFT JOIN positions AS po
        ON po.song_id = s.song_id
)
SELECT
    d.*,
    COUNT(*) OVER (PARTITION BY d.artist_id) - 1 AS artist_other_songs,
    -- leave-one-out: the mean popularity of the artist's OTHER songs (null when none has one)
    (SUM(d.popularity) OVER (PARTITION BY d.artist_id) - COALESCE(d.popularity, 0))
        / NULLIF(
            COUNT(d.popularity) OVER (PARTITION BY d.artist_id) - CASE WHEN d.popularity IS NULL THEN 0 ELSE 1 END,
            0
        ) AS artist_other_mean_popularity
FROM described AS d
ORDER BY d.song_id
