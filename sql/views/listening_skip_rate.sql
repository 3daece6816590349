-- Per listener and month (UTC): how often plays were skipped. `skip_rate` is the share of
-- plays with skipped = true among the plays whose export says (skipped not null); the plays
-- it cannot judge are counted in `plays_skip_unknown` (the account-data format never records
-- skips, the extended formats leave some null), and the rate is null when no play says.
-- `short_play_rate` is the share of plays under 30 seconds among those with ms_played known,
-- which every format records. Every play counts, music or podcast. Rates to 4 decimals.
CREATE OR REPLACE VIEW {schema}.listening_skip_rate AS
SELECT
    listener,
    month_start,
    COUNT(*) AS plays,
    COUNT(skipped) AS plays_skip_known,
    COUNT(CASE WHEN skipped THEN 1 END) AS plays_skipped,
    COUNT(*) - COUNT(skipped) AS plays_skip_unknown,
    ROUND(COUNT(CASE WHEN skipped THEN 1 END) / NULLIF(COUNT(skipped), 0), 4) AS skip_rate,
    COUNT(CASE WHEN short_play THEN 1 END) AS short_plays,
    ROUND(COUNT(CASE WHEN short_play THEN 1 END) / NULLIF(COUNT(short_play), 0), 4) AS short_play_rate
FROM {schema}.listening_plays
GROUP BY listener, month_start
