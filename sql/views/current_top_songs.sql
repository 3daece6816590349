-- The current songs ranked by popularity; where the API gave no popularity at all (a
-- Development Mode app), by how many current playlist rows list them. `rank_basis` says which.
-- Songs without popularity rank after those with it.
CREATE OR REPLACE VIEW {schema}.current_top_songs AS
WITH basis AS (
    SELECT
        CASE WHEN COUNT(popularity) > 0 THEN 'popularity' ELSE 'playlist_appearances' END AS rank_basis
    FROM {schema}.current_songs
)
SELECT
    ROW_NUMBER() OVER (
        ORDER BY
            CASE WHEN b.rank_basis = 'popularity' THEN cs.popularity END DESC NULLS LAST,
            cs.playlist_appearances DESC,
            cs.song_id
    ) AS song_rank,
    b.rank_basis,
    cs.song_id,
    cs.name,
    cs.artist_id,
    ar.name AS artist_name,
    cs.popularity,
    cs.playlist_appearances,
    cs.playlist_count,
    cs.window_start
FROM {schema}.current_songs AS cs
CROSS JOIN basis AS b
LEFT JOIN {schema}.artists AS ar
    ON ar.artist_id = cs.artist_id
    AND ar.window_start = cs.window_start
