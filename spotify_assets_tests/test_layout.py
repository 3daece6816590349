"""The package's boundary: `lib/` is plain Python, Dagster lives in `defs/`.

`spotify_assets/lib/` holds what would be the same without Dagster (the Spotify client,
normalization, quality rules, the warehouses, the model, alert delivery, the samples): it is
tested without an instance and reusable from a notebook. Everything that speaks Dagster (assets,
checks, resources, IO managers, sensors, the event log, metadata values) is under `defs/`;
outside both, only the entry points wire them: `definitions.py` (the code location), `cli.py`
(the demo) and `production.py` (the Snowflake warehouse's resources).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spotify_assets"
ENTRY_POINTS = {"definitions.py", "cli.py", "production.py"}


def dagster_imports(path: Path) -> list[str]:
    """Every import of dagster or a dagster_* integration in the module, at any depth (an
    import inside a function counts: it runs when the function does)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] == "dagster" or name.startswith("dagster_")]
    return found


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", modules(PACKAGE / "lib"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_under_lib_imports_dagster(path: Path) -> None:
    assert dagster_imports(path) == [], f"{path.relative_to(PACKAGE)} imports Dagster; its Dagster side belongs under defs/"


def test_outside_defs_only_the_entry_points_import_dagster() -> None:
    speaking = {
        str(p.relative_to(PACKAGE))
        for p in modules(PACKAGE)
        if "defs" not in p.relative_to(PACKAGE).parts and dagster_imports(p)
    }
    assert speaking <= ENTRY_POINTS, f"outside defs/, only {sorted(ENTRY_POINTS)} may import Dagster: {sorted(speaking - ENTRY_POINTS)}"


def test_the_guard_sees_every_form_of_import(tmp_path: Path) -> None:
    """The check itself: top-level, aliased, from-imports and imports inside functions."""
    sample = tmp_path / "m.py"
    sample.write_text(
        "import os\nimport dagster as dg\nfrom dagster_aws.s3 import S3Resource\n"
        "def f():\n    from dagster._core.instance import DagsterInstance\n    import dagster_slack\n"
        "from .dagster import x\nimport dagsterish\n"
    )
    assert [line.split(": ")[1] for line in dagster_imports(sample)] == [
        "dagster", "dagster_aws.s3", "dagster._core.instance", "dagster_slack",
    ]


# --- configuration is read when the code location loads, never when a module is imported ------

_IMPORT_SPY = r'''
import importlib, json, os, pkgutil, sys
from collections.abc import MutableMapping

reads = []


def _reader():
    frame = sys._getframe(2)
    while frame and frame.f_globals.get("__name__") in (__name__, "os", "_collections_abc", "collections.abc"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame else ""


class Spy(MutableMapping):
    """os.environ, noting which of our modules reads it."""

    def __init__(self, env):
        self.env = env

    def _note(self, key):
        module = _reader()
        if module.startswith("spotify_assets"):
            reads.append(f"{module} reads os.environ[{key!r}]")

    def __getitem__(self, key):
        self._note(key)
        return self.env[key]

    def __contains__(self, key):
        self._note(key)
        return key in self.env

    def __setitem__(self, key, value):
        self.env[key] = value

    def __delitem__(self, key):
        del self.env[key]

    def __iter__(self):
        self._note("*")
        return iter(self.env)

    def __len__(self):
        return len(self.env)

    def copy(self):
        self._note("*")
        return dict(self.env)


os.environ = Spy(os.environ)
from spotify_assets.lib import settings

for name in ("load_settings",):
    original = getattr(settings, name)
    setattr(settings, name, lambda *a, _o=original, _n=name, **k: reads.append(f"{_n}() called") or _o(*a, **k))
from_env = settings.Settings.from_env.__func__
settings.Settings.from_env = classmethod(lambda cls, *a, **k: reads.append("Settings.from_env called") or from_env(cls, *a, **k))

import spotify_assets
names = sorted(info.name for info in pkgutil.walk_packages(spotify_assets.__path__, prefix="spotify_assets."))
names += sys.argv[1:]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": len(names), "reads": reads}))
'''


def _import_reads(*extra: str, path: str | None = None) -> dict:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [path, str(PACKAGE.parent)]))}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_SPY, *extra], capture_output=True, text=True, timeout=240, env=env, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_importing_any_module_reads_no_configuration() -> None:
    """`os.environ` and the settings are read once, by `definitions.defs()` when the code location
    loads (and by the CLI when it runs): importing a module, the daemon's first step in every
    process, reads neither, so what a module declares cannot depend on the environment."""
    found = _import_reads()
    assert found["modules"] > 50
    assert found["reads"] == []


@pytest.mark.slow
def test_the_import_guard_sees_a_module_that_reads_configuration(tmp_path: Path) -> None:
    (tmp_path / "spotify_assets_probe.py").write_text(
        "import os\nfrom spotify_assets.lib.settings import load_settings\n"
        "HOME = os.environ.get('SPOTIFY_ASSETS_DATA_DIR')\nFIRST = os.getenv('SPOTIFY_ASSETS_FIRST_WINDOW')\n"
        "SETTINGS = load_settings()\n"
    )
    reads = _import_reads("spotify_assets_probe", path=str(tmp_path))["reads"]
    assert "spotify_assets_probe reads os.environ['SPOTIFY_ASSETS_DATA_DIR']" in reads
    assert "spotify_assets_probe reads os.environ['SPOTIFY_ASSETS_FIRST_WINDOW']" in reads
    assert "load_settings() called" in reads
