-- Each listener's artists ranked by time listened over the whole history: minutes played (2
-- decimals), plays and distinct track names. Music only: podcast episodes and plays that
-- name neither track nor episode are left out (content_type, see listening_plays), and so
-- are plays without an artist name. Artists are told apart by name, as the exports give it.
-- Ties: more plays first, then the artist's name, so each rank is held by one artist.
CREATE OR REPLACE VIEW {schema}.listening_top_artists AS
SELECT
    listener,
    ROW_NUMBER() OVER (
        PARTITION BY listener
        ORDER BY SUM(ms_played) DESC NULLS LAST, COUNT(*) DESC, artist_name
    ) AS artist_rank,
    artist_name,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played,
    COUNT(*) AS plays,
    COUNT(DISTINCT track_name) AS tracks
FROM {schema}.listening_plays
WHERE content_type = 'track' AND artist_name IS NOT NULL
GROUP BY listener, artist_name
