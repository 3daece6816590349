-- The songs the stored popularity forecast expects to rise, most first: each song of the
-- forecast's window, its popularity then, the popularity expected `horizon_windows` later
-- (at `forecast_window`) and the expected change. `new_song` marks songs first listed in that
-- window (no history: the "potential hit" case). Empty until a model is stored, and in
-- Development Mode, where the API gives no popularity to forecast from.
CREATE OR REPLACE VIEW {schema}.rising_songs AS
SELECT
    ROW_NUMBER() OVER (ORDER BY p.expected_change DESC, p.predicted_popularity DESC, p.song_id) AS rising_rank,
    p.song_id,
    p.name,
    p.artist_id,
    ar.name AS artist_name,
    p.popularity,
    p.predicted_popularity,
    p.expected_change,
    p.new_song,
    p.window_start,
    p.forecast_window,
    p.horizon_windows,
    p.model,
    p.model_version
FROM {schema}.song_popularity_predictions AS p
LEFT JOIN {schema}.artists AS ar
    ON ar.artist_id = p.artist_id
    AND ar.window_start = p.window_start
WHERE p.expected_change > 0
