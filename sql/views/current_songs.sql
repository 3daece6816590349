-- Every song in the current playlists (see current_playlist_tracks), described as in the
-- newest snapshot that lists it, with how often the current playlists list it.
CREATE OR REPLACE VIEW {schema}.current_songs AS
WITH listed AS (
    SELECT
        song_id,
        MAX(window_start) AS window_start,
        COUNT(*) AS playlist_appearances,
        COUNT(DISTINCT playlist_id) AS playlist_count
    FROM {schema}.current_playlist_tracks
    GROUP BY song_id
)
SELECT
    s.window_start,
    s.song_id,
    s.name,
    s.artist_id,
    s.album_id,
    s.popularity,
    s.duration_ms,
    s.explicit,
    l.playlist_appearances,
    l.playlist_count
FROM {schema}.songs AS s
JOIN listed AS l
    ON l.song_id = s.song_id
    AND l.window_start = s.window_start
