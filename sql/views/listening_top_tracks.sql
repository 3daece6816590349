-- Each listener's tracks ranked by time listened over the whole history: minutes played (2
-- decimals) and plays. A track is a track name with its artist name, as the exports give
-- them (every format has both; older formats have no URI), so versions sharing a name and
-- artist count as one. Music only: podcast episodes and plays without a track name are
-- left out; a track whose artist is not named is listed with artist_name null. Ties: more
-- plays first, then track and artist name, so each rank is held by one track.
CREATE OR REPLACE VIEW {schema}.listening_top_tracks AS
SELECT
    listener,
    ROW_NUMBER() OVER (
        PARTITION BY listener
        ORDER BY SUM(ms_played) DESC NULLS LAST, COUNT(*) DESC, track_name, artist_name NULLS LAST
    ) AS track_rank,
    track_name,
    artist_name,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played,
    COUNT(*) AS plays
FROM {schema}.listening_plays
WHERE content_type = 'track' AND track_name IS NOT NULL
GROUP BY listener, track_name, artist_name
