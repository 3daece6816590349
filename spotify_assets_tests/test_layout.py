"""The package's boundary: `lib/` is plain Python, Dagster lives in `defs/`.

`spotify_assets/lib/` holds what would be the same without Dagster (the Spotify client,
normalization, quality rules, the warehouses, the model, alert delivery, the samples): it is
tested without an instance and reusable from a notebook. Everything that speaks Dagster (assets,
checks, resources, IO managers, sensors, the event log, metadata values) is under `defs/`;
outside both, only the entry points wire them: `definitions.py` (the code location), `cli.py`
(the demo) and `production.py` (the production resources).
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
