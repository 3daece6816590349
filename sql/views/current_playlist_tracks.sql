-- Each configured playlist's rows from the newest window in which it was read completely.
-- "Configured" means listed in the newest window (failed playlists are listed too). When the
-- newest window is partial (a playlist failed: 403, 404, rate limit), that playlist's previous
-- good snapshot stands in for it, so "current" figures do not drop because of one bad read.
CREATE OR REPLACE VIEW {schema}.current_playlist_tracks AS
WITH newest AS (
    SELECT MAX(window_start) AS window_start
    FROM {schema}.playlists
),
configured AS (
    SELECT p.playlist_id
    FROM {schema}.playlists AS p
    JOIN newest AS n ON p.window_start = n.window_start
),
latest_ok AS (
    SELECT p.playlist_id, MAX(p.window_start) AS window_start
    FROM {schema}.playlists AS p
    JOIN configured AS c ON c.playlist_id = p.playlist_id
    WHERE p.status = 'ok'
    GROUP BY p.playlist_id
)
SELECT
    pt.window_start,
    pt.playlist_id,
    pt.position,
    pt.song_id,
    pt.added_at,
    pt.added_by_id
FROM {schema}.playlist_tracks AS pt
JOIN latest_ok AS l
    ON l.playlist_id = pt.playlist_id
    AND l.window_start = pt.window_start
