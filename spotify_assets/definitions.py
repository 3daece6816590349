"""Entry point of the code location: every module under `defs/` is loaded, with the resources
of the deployment that `SPOTIFY_ASSETS_DEPLOYMENT` selects.

Configuration flows one way. The environment is parsed here into `Settings` (`lib/settings.py`:
every setting declared once, every bad value named at load). The modules under `defs/` declare
their assets without the deployment, and `bind` gives them what depends on it (the warehouse's
kind and column types) with `dg.map_asset_specs`; what is partitioned by window is built for the
settings' first window (`defs/playlists/windowed.py`). At run time, assets, checks and sensors read the same `Settings` object
as the `settings` resource, and the resources are built from it (`defs/resources.py`).

The modules are collected here rather than by `dg.load_from_defs_folder`, which also imports
every installed Dagster integration's component registry (dagster-aws, dagster-snowflake,
...: seconds) to describe them to the UI. The daemon loads the code location again in every
step process of every run, so loading only what this project uses is what keeps runs fast.
"""

import importlib
import os
import pkgutil
import warnings

import dagster as dg

from spotify_assets import defs as defs_package
from spotify_assets.lib.settings import Settings


def defs_modules() -> list:
    """The modules of `spotify_assets/defs/` and its folders, imported."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(defs_package.__path__, prefix=f"{defs_package.__name__}.")
        if not info.ispkg
    ]


def bind(assets: list, settings: Settings) -> list:
    """The assets with what depends on the deployment: every declared table gets its
    warehouse as a kind and its column types as that warehouse names them."""
    from spotify_assets.defs.io_managers import column_schema
    from spotify_assets.lib.tables.schema import DECLARED_TABLES

    kind = settings.warehouse_kind

    def spec_for(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        if name not in DECLARED_TABLES:
            return spec
        return spec.replace_attributes(
            kinds={*spec.kinds, kind},
            metadata={**spec.metadata, "dagster/column_schema": column_schema(name, kind)},
        )

    return [dg.map_asset_specs(spec_for, [a])[0] if isinstance(a, dg.AssetsDefinition) else a for a in assets]


def build_definitions(settings: Settings, executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Everything under `defs/`, bound to `settings`, with the deployment's resources and
    `executor` for every job (default: the project's, see `defs/execution.py`)."""
    from spotify_assets.defs.execution import EXECUTOR
    from spotify_assets.defs.playlists.windowed import windowed_definitions
    from spotify_assets.defs.resources import build_resources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # the module loader is marked preview
        found = dg.Definitions.merge(
            dg.load_definitions_from_modules(defs_modules()), windowed_definitions(settings.first_window)
        )
    return dg.Definitions(
        assets=bind(list(found.assets or []), settings),
        asset_checks=found.asset_checks,
        jobs=found.jobs,
        schedules=found.schedules,
        sensors=found.sensors,
        resources=build_resources(settings),
        executor=executor or EXECUTOR,
    )


@dg.definitions
def defs() -> dg.Definitions:
    # the one read of the environment: raises SettingsError naming every bad value, at load
    return build_definitions(Settings.from_env(os.environ))
