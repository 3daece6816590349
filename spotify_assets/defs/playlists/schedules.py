"""The 8-hour schedule: snapshot the window that just closed, then everything downstream."""

import dagster as dg

from spotify_assets.defs.playlists.checks import raw_freshness
from spotify_assets.defs.playlists.raw import RAW_KEY

spotify_pipeline_job = dg.define_asset_job(
    name="spotify_pipeline_job",
    # every asset from the raw snapshots on, with their per-window checks; freshness is not
    # about one window and has its own hourly schedule
    # partitioned by the windows of the assets it selects (defs/partitions.py), bound at load
    selection=dg.AssetSelection.assets(RAW_KEY).downstream() - dg.AssetSelection.checks(raw_freshness),
    description="One 8-hour window: raw playlist snapshots, every asset built from them, and their checks.",
)

# At 00:00, 08:00 and 16:00 UTC this runs the window that has just closed.
spotify_pipeline_schedule = dg.build_schedule_from_partitioned_job(
    spotify_pipeline_job,
    name="spotify_pipeline_schedule",
    description="Every 8 hours (0 */8 * * * UTC): the window that just closed, end to end.",
)
