-- Per listener and day of the week (UTC; `iso_weekday` 1 = Monday … 7 = Sunday, with
-- `weekday_name` in English, the same on both warehouses, see listening_plays): streams,
-- minutes played (2 decimals) and the weekday's share of the listener's streams (4
-- decimals). Every play counts, music or podcast; weekdays without plays have no row.
CREATE OR REPLACE VIEW {schema}.listening_by_weekday AS
SELECT
    listener,
    iso_weekday,
    weekday_name,
    COUNT(*) AS streams,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played,
    ROUND(COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY listener), 4) AS share_of_streams
FROM {schema}.listening_plays
GROUP BY listener, iso_weekday, weekday_name
