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

