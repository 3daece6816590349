-- Each song's popularity in every window that lists it, and its change since the previous
-- window that listed it (`previous_window_start` says which: a song can skip windows).
-- Where the API returned no popularity, the value and the change are null.
CREATE OR REPLACE VIEW {schema}.popularity_history AS
SELECT
    song_id,
    window_start,
    name,
    popularity,
    LAG(window_start) OVER (PARTITION BY song_id ORDER BY window_start) AS previous_window_start,
    LAG(popularity) OVER (PARTITION BY song_id ORDER BY window_start) AS previous_popularity,
    popularity - LAG(popularity) OVER (PARTITION BY song_id ORDER BY window_start) AS popularity_change
FROM {schema}.songs
