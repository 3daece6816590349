-- The five artists with the most songs in the current playlists (ties: more playlist rows,
-- then artist id, so the ranking is stable).
CREATE OR REPLACE VIEW {schema}.top_artists AS
SELECT *
FROM (
    SELECT
        ROW_NUMBER() OVER (
            ORDER BY song_count DESC, track_appearances DESC, artist_id
        ) AS artist_rank,
        artist_id,
        artist_name,
        song_count,
        avg_popularity,
        avg_duration_ms,
        track_appearances
    FROM {schema}.artist_analytics
) AS ranked
WHERE artist_rank <= 5
