-- Artists gained and lost month over month, per listener (UTC months). For each month:
-- `artists` heard in it, `new_artists` not heard in the calendar month before, `retained_artists`
-- heard in both, `lost_artists` heard in the month before but not in this one, and
-- `retention_rate` = retained / artists of the month before (4 decimals; null when the month
-- before had none). Artists are music artists by name (as listening_top_artists: podcasts
-- and plays without an artist name left out). A month has a row when the listener heard an
-- artist in it or in the month before, up to the listener's last month with any play, so a
-- month without music after one with music shows what was lost.
CREATE OR REPLACE VIEW {schema}.listening_artist_churn AS
WITH heard AS (
    SELECT DISTINCT listener, month_start, artist_name
    FROM {schema}.listening_plays
    WHERE content_type = 'track' AND artist_name IS NOT NULL
),
presence AS (
    SELECT listener, month_start, artist_name, 1 AS heard_now, 0 AS heard_before
    FROM heard
    UNION ALL
    -- 31 days after a month's first day always falls in the next month
    SELECT listener, CAST(DATE_TRUNC('month', month_start + 31) AS DATE), artist_name, 0, 1
    FROM heard
),
per_artist AS (
    SELECT
        listener,
        month_start,
        artist_name,
        MAX(heard_now) AS heard_now,
        MAX(heard_before) AS heard_before
    FROM presence
    GROUP BY listener, month_start, artist_name
),
last_month AS (
    SELECT listener, MAX(month_start) AS month_start
    FROM {schema}.listening_plays
    GROUP BY listener
)
SELECT
    p.listener,
    p.month_start,
    CAST(SUM(p.heard_now) AS BIGINT) AS artists,
    CAST(SUM(p.heard_now * (1 - p.heard_before)) AS BIGINT) AS new_artists,
    CAST(SUM(p.heard_now * p.heard_before) AS BIGINT) AS retained_artists,
    CAST(SUM(p.heard_before * (1 - p.heard_now)) AS BIGINT) AS lost_artists,
    CAST(SUM(p.heard_before) AS BIGINT) AS previous_artists,
    ROUND(SUM(p.heard_now * p.heard_before) / NULLIF(SUM(p.heard_before), 0), 4) AS retention_rate
FROM per_artist AS p
JOIN last_month AS l
    ON l.listener = p.listener
    AND p.month_start <= l.month_start
GROUP BY p.listener, p.month_start
