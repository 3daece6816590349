-- Per listener and month (UTC): on how many days the listener played anything (music or
-- podcast), out of the month's days, that share (4 decimals), and the minutes played per
-- active day (2 decimals). Months without plays have no row.
CREATE OR REPLACE VIEW {schema}.listening_active_days AS
SELECT
    listener,
    month_start,
    COUNT(DISTINCT played_date) AS active_days,
    -- the next month's first day: 31 days after a first day always falls in the next month
    CAST(DATE_TRUNC('month', month_start + 31) AS DATE) - month_start AS days_in_month,
    ROUND(
        COUNT(DISTINCT played_date) / (CAST(DATE_TRUNC('month', month_start + 31) AS DATE) - month_start), 4
    ) AS active_day_share,
    ROUND(COALESCE(SUM(ms_played), 0) / 60000.0 / COUNT(DISTINCT played_date), 2) AS minutes_per_active_day
FROM {schema}.listening_plays
GROUP BY listener, month_start
