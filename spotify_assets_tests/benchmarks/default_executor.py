"""The project's definitions with Dagster's default executor (`multi_or_in_process_executor`)
instead of the project's in-process one: the reference runs of `daemon_path.py`.

    dagster job execute -m spotify_assets_tests.benchmarks.default_executor -j spotify_pipeline_job ...
"""

import os

import dagster as dg

from spotify_assets.definitions import build_definitions
from spotify_assets.lib.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env(os.environ), dg.multi_or_in_process_executor)
