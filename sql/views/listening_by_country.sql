-- Per connection country (conn_country, the ISO code the export gives), over all listeners
-- and all time: streams, minutes played (2 decimals), how many listeners played from there,
-- and the country's share of all streams (4 decimals). Plays whose export gives no country
-- are one row with conn_country null. Every play counts, music or podcast.
CREATE OR REPLACE VIEW {schema}.listening_by_country AS
SELECT
    conn_country,
    COUNT(*) AS streams,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played,
    COUNT(DISTINCT listener) AS listeners,
    ROUND(COUNT(*) / SUM(COUNT(*)) OVER (), 4) AS share_of_streams
FROM {schema}.listening_plays
GROUP BY conn_country
