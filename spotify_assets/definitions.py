"""Entry point of the code location: every module under `defs/` is loaded, with the resources
of the deployment that `SPOTIFY_ASSETS_DEPLOYMENT` selects.

The modules are collected here rather than by `dg.load_from_defs_folder`, which also imports
every installed Dagster integration's component registry (dagster-aws, dagster-snowflake,
...: seconds) to describe them to the UI. The daemon loads the code location again in every
step process of every run, so loading only what this project uses is what keeps runs fast.
"""

import importlib
import pkgutil
import warnings

import dagster as dg

from spotify_assets import defs as defs_package


def defs_modules() -> list:
    """The modules of `spotify_assets/defs/` and its folders, imported."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(defs_package.__path__, prefix=f"{defs_package.__name__}.")
        if not info.ispkg
    ]


def build_definitions(executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Everything under `defs/`, with the selected deployment's resources and `executor` for
    every job (default: the project's, see `defs/execution.py`)."""
    from spotify_assets.defs.execution import EXECUTOR
    from spotify_assets.defs.resources import build_resources, load_settings

    settings = load_settings()  # raises SettingsError naming every bad value, before anything runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # the module loader is marked preview
        found = dg.load_definitions_from_modules(defs_modules())
    return dg.Definitions.merge(
        found, dg.Definitions(resources=build_resources(settings), executor=executor or EXECUTOR)
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
