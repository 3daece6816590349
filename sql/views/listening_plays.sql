-- One row per play of the listening history (streams), with its UTC calendar: the date, hour
-- (0-23), ISO weekday (1 = Monday … 7 = Sunday, with its English name), ISO week (the Monday
-- it starts on) and month (its first day) in which playback ended, all in UTC whatever the
-- session time zone or the offset a warehouse stored (computed from the instant's epoch
-- seconds, not from its wall clock). `content_type` is 'episode' for podcast plays (an
-- episode or show is named), 'track' for music (a track name or URI), 'other' when the
-- export names neither; `short_play` is true below 30 seconds (null when ms_played is).
-- The other listening views read this one.
CREATE OR REPLACE VIEW {schema}.listening_plays AS
WITH instants AS (
    SELECT
        s.*,
        CAST(FLOOR(EXTRACT(EPOCH FROM s.played_at) / 86400) AS BIGINT) AS utc_day,
        CAST(FLOOR(EXTRACT(EPOCH FROM s.played_at) / 3600) AS BIGINT) AS utc_hour_number,
        CAST(s.played_at AS DATE) AS wall_clock_date
    FROM {schema}.streams AS s
),
dated AS (
    SELECT
        i.*,
        -- The wall-clock date is off by at most one day (offsets are within ±14 h): correct
        -- it with literal days, the date arithmetic both engines accept.
        CASE utc_day - (wall_clock_date - DATE '1970-01-01')
            WHEN 1 THEN wall_clock_date + 1
            WHEN -1 THEN wall_clock_date - 1
            ELSE wall_clock_date
        END AS played_date,
        CAST(utc_hour_number - 24 * utc_day AS INTEGER) AS played_hour,
        -- 1970-01-01 was a Thursday (ISO weekday 4)
        CAST(MOD(MOD(utc_day + 3, 7) + 7, 7) + 1 AS INTEGER) AS iso_weekday
    FROM instants AS i
)
SELECT
    listener,
    played_at,
    played_date,
    played_hour,
    iso_weekday,
    CASE iso_weekday
        WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday'
        WHEN 5 THEN 'Friday' WHEN 6 THEN 'Saturday' ELSE 'Sunday'
    END AS weekday_name,
    CASE iso_weekday
        WHEN 1 THEN played_date WHEN 2 THEN played_date - 1 WHEN 3 THEN played_date - 2
        WHEN 4 THEN played_date - 3 WHEN 5 THEN played_date - 4 WHEN 6 THEN played_date - 5
        ELSE played_date - 6
    END AS week_start,
    CAST(DATE_TRUNC('month', played_date) AS DATE) AS month_start,
    CASE
        WHEN episode_uri IS NOT NULL OR episode_name IS NOT NULL OR show_name IS NOT NULL THEN 'episode'
        WHEN track_name IS NOT NULL OR track_uri IS NOT NULL THEN 'track'
        ELSE 'other'
    END AS content_type,
    ms_played,
    ms_played < 30000 AS short_play,
    skipped,
    track_name,
    artist_name,
    album_name,
    song_id,
    episode_name,
    show_name,
    conn_country,
    platform,
    source_format,
    source_sha256,
    source_row
FROM dated
