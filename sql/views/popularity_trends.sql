-- Per window: songs from recent releases against older ones, with their count and average
-- popularity. "Recent" means released within {recent_release_days} days before the window
-- (SPOTIFY_ASSETS_RECENT_RELEASE_DAYS). A release date of year or month precision denotes a
-- period: it is recent when the whole period is after the cut, older when the whole period
-- is before it, and 'straddles_cut' otherwise; no day is invented. `window_complete` is false
-- when a playlist could not be read in that window, so its counts are partial.
CREATE OR REPLACE VIEW {schema}.popularity_trends AS
WITH classified AS (
    SELECT
        s.window_start,
        s.song_id,
        s.popularity,
        CASE
            WHEN al.release_period_start IS NULL THEN 'unknown'
            WHEN al.release_period_start >= CAST(s.window_start AS DATE) - {recent_release_days} THEN 'recent'
            WHEN al.release_period_end < CAST(s.window_start AS DATE) - {recent_release_days} THEN 'older'
            ELSE 'straddles_cut'
        END AS release_group
    FROM {schema}.songs AS s
    LEFT JOIN {schema}.albums AS al
        ON al.album_id = s.album_id
        AND al.window_start = s.window_start
),
windows AS (
    SELECT
        window_start,
        COUNT(*) AS playlists,
        SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS playlists_read
    FROM {schema}.playlists
    GROUP BY window_start
)
SELECT
    c.window_start,
    c.release_group,
    COUNT(*) AS song_count,
    COUNT(c.popularity) AS songs_with_popularity,
    ROUND(AVG(c.popularity), 2) AS avg_popularity,
    w.playlists_read = w.playlists AS window_complete
FROM classified AS c
JOIN windows AS w ON w.window_start = c.window_start
GROUP BY c.window_start, c.release_group, w.playlists_read, w.playlists
