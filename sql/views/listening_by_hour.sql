-- Per listener and hour of the day (0-23, UTC: the hour in which playback ended, see
-- listening_plays): streams, minutes played (2 decimals) and the hour's share of the
-- listener's streams (4 decimals). Every play counts, music or podcast; hours without plays
-- have no row.
CREATE OR REPLACE VIEW {schema}.listening_by_hour AS
SELECT
    listener,
    played_hour AS hour_of_day,
    COUNT(*) AS streams,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played,
    ROUND(COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY listener), 4) AS share_of_streams
FROM {schema}.listening_plays
GROUP BY listener, played_hour
