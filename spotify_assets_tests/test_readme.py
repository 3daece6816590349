"""What README.md tells a user to run or paste must work with what the lock file installs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy
import yaml
from dagster_postgres.utils import pg_url_from_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_production_instance_config_uses_an_installed_postgres_driver(monkeypatch) -> None:
    """The README's dagster.yaml: the driver its URL names must be importable (no server needed)."""
    block = re.search(r"`\$DAGSTER_HOME/dagster.yaml`:\n\n```yaml\n(.*?)```", README, re.S)
    assert block, "README no longer shows the production dagster.yaml"
    config = yaml.safe_load(block.group(1))
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "x")
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    db = {k: os.environ[v["env"]] if isinstance(v, dict) else v for k, v in postgres_db.items()}
    engine = sqlalchemy.create_engine(pg_url_from_config({"postgres_db": db}))  # imports the DBAPI
    assert engine.dialect.driver == "psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"



def test_the_readme_names_the_groups_the_ui_shows() -> None:
    """The asset table at the top of the README: every asset it names is in the group it says."""
    from spotify_assets.definitions import defs

    groups = {spec.key.to_user_string(): spec.group_name for spec in defs().resolve_all_asset_specs()}
    table = re.search(r"\| asset \| group \| what it is \|\n\|---\|---\|---\|\n((?:\|.*\n)+)", README)
    assert table, "README no longer has the asset table"
    said: dict[str, str] = {}
    for line in table.group(1).splitlines():
        names, group = line.split("|")[1:3]
        for name in re.findall(r"`([\w*]+)`", names):
            matching = [n for n in groups if n.startswith(name[:-1])] if name.endswith("*") else [name]
            assert matching, f"README names {name}, which is no asset"
            said |= {n: group.strip() for n in matching}
    assert {n: groups[n] for n in said} == said
    assert set(said) == set(groups), f"assets the README's table leaves out: {sorted(set(groups) - set(said))}"


def test_the_readme_starts_the_ui_with_dg_dev() -> None:
    """`dagster dev` prints a SupersessionWarning pointing at `dg dev`: the README's commands use `dg dev`."""
    commands = [line for block in re.findall(r"```bash\n(.*?)```", README, re.S) for line in block.splitlines()]
    assert any(line.rstrip().endswith("uv run dg dev") for line in commands)
    assert not [line for line in commands if re.search(r"\bdagster dev\b", line)]
