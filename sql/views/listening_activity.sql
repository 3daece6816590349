-- Streams and minutes played per listener and period, three grains in one view: `period` is
-- 'day', 'week' (ISO week, starting on Monday) or 'month', and `period_start` its first day,
-- all in UTC (see listening_plays). A stream is one row of streams: every play, however
-- short, music or podcast (listening_skip_rate counts the plays under 30 seconds). Minutes
-- are ms_played summed, to 2 decimals. Periods without plays have no row.
CREATE OR REPLACE VIEW {schema}.listening_activity AS
WITH periods AS (
    SELECT listener, 'day' AS period, played_date AS period_start, ms_played
    FROM {schema}.listening_plays
    UNION ALL
    SELECT listener, 'week' AS period, week_start AS period_start, ms_played
    FROM {schema}.listening_plays
    UNION ALL
    SELECT listener, 'month' AS period, month_start AS period_start, ms_played
    FROM {schema}.listening_plays
)
SELECT
    listener,
    period,
    period_start,
    COUNT(*) AS streams,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0, 2) AS minutes_played
FROM periods
GROUP BY listener, period, period_start
