-- Per artist, over the current playlists: distinct songs credited to the artist (a song with
-- two artists counts for both), their average popularity (null when the API returned none)
-- and duration, and how many playlist rows list those songs.
CREATE OR REPLACE VIEW {schema}.artist_analytics AS
WITH credits AS (
    SELECT DISTINCT
        sa.artist_id,
        cs.song_id,
        cs.popularity,
        cs.duration_ms,
        cs.playlist_appearances
    FROM {schema}.current_songs AS cs
    JOIN {schema}.song_artists AS sa
        ON sa.song_id = cs.song_id
        AND sa.window_start = cs.window_start
),
names AS (
    SELECT artist_id, name
    FROM (
        SELECT
            artist_id,
            name,
            ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY window_start DESC) AS newest_first
        FROM {schema}.artists
    ) AS ranked
    WHERE newest_first = 1
)
SELECT
    c.artist_id,
    n.name AS artist_name,
    COUNT(*) AS song_count,
    ROUND(AVG(c.popularity), 2) AS avg_popularity,
    COUNT(c.popularity) AS songs_with_popularity,
    CAST(ROUND(AVG(c.duration_ms), 0) AS BIGINT) AS avg_duration_ms,
    CAST(SUM(c.playlist_appearances) AS BIGINT) AS track_appearances
FROM credits AS c
LEFT JOIN names AS n ON n.artist_id = c.artist_id
GROUP BY c.artist_id, n.name
