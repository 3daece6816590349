"""The pipeline with SPOTIFY_ASSETS_WAREHOUSE=mysql, end to end and unchanged: the Spotify API
emulator -> raw snapshots in S3 (moto's server, SPOTIFY_ASSETS_DEPLOYMENT=production) -> the
six tables, the views, the checks and the model's features in MariaDB, connecting over TLS
(the CA bundle configured) as the least-privilege user that sql/mysql/setup.sql creates, its
password read through dg.EnvVar."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pymysql
import pytest

from spotify_assets.defs.analytics.views import view_assets
from spotify_assets.defs.model.assets import popularity_features
from spotify_assets.defs.mysql_warehouse import MySQLWarehouse, WarehouseMySQLIOManager, connection_fields
from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.quality import rules as quality
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse import mysql as mysql_target
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import artist, playlist, row, track
from spotify_assets_tests.support.mariadb import MySQLServer
from spotify_assets_tests.support.windows import windowed, windows

pytestmark = pytest.mark.slow

SETUP_SQL = Path(__file__).resolve().parents[3] / "sql" / "mysql" / "setup.sql"
PLAYLIST_VIEWS = [v for v in view_assets if not v.key.to_user_string().startswith("listening_")]


def run_setup(server: MySQLServer, database: str, pipeline: str, bi: str, passwords: dict[str, str]) -> None:
    """sql/mysql/setup.sql as an administrator runs it, with this test's names and passwords
    (and without REQUIRE SSL on a server the tests did not start, which may have no TLS)."""
    script = SETUP_SQL.read_text(encoding="utf-8")
    script = script.replace("spotify_pipeline", pipeline).replace("spotify_bi", bi).replace(" spotify.*", f" {database}.*")
    script = script.replace("EXISTS spotify ", f"EXISTS {database} ")
    script = script.replace("change-me-pipeline", passwords[pipeline]).replace("change-me-bi", passwords[bi])
    if server.ca is None:
        script = script.replace(" REQUIRE SSL", "")
    statements = [s.strip() for s in "\n".join(line for line in script.splitlines() if not line.startswith("--")).split(";")]
    conn = mysql_target.connect_pymysql(server.url)
    try:
        with conn.cursor() as cur:
            for statement in filter(None, statements):
                cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def deployed(monkeypatch, s3_env, mysql_server: MySQLServer, emulator: SpotifyEmulator):  # type: ignore[no-untyped-def]
    a_meta, a_rows = playlist("my-a", 60)
    b_meta, _ = playlist("my-b", 0)
    duet = track("my-duet", artists=3, popularity=77)
    duet["album"]["artists"] = [artist("Кино 周杰伦 محمد")]
    b_rows = [row(duet), *a_rows[:5], row(duet), row(None)]
    emulator.add_playlist(a_meta, a_rows)
    emulator.add_playlist(b_meta, b_rows)
    tag = uuid.uuid4().hex[:8]
    database, pipeline, bi = f"spotify_{tag}", f"pipeline_{tag}", f"bi_{tag}"
    passwords = {pipeline: f"p@ss:{tag}/#%", bi: f"bi-{tag}"}  # URL-special characters
    run_setup(mysql_server, database, pipeline, bi, passwords)
    url = mysql_server.url.split("@", 1)[1].rstrip("/")
    host, port = url.rsplit(":", 1)
    env = {
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_WAREHOUSE": "mysql",
        "SPOTIFY_ASSETS_S3_BUCKET": s3_env["bucket"],
        "SPOTIFY_CLIENT_ID": emulator.client_id,
        "SPOTIFY_CLIENT_SECRET": emulator.client_secret,
        "SPOTIFY_API_URL": emulator.api_url,
        "SPOTIFY_ACCOUNTS_URL": emulator.accounts_url,
        "SPOTIFY_PLAYLISTS": ",".join([a_meta["id"], b_meta["id"]]),
        "SPOTIFY_ASSETS_MYSQL_HOST": host,
        "SPOTIFY_ASSETS_MYSQL_PORT": port,
        "SPOTIFY_ASSETS_MYSQL_USER": pipeline,
        "SPOTIFY_ASSETS_MYSQL_PASSWORD": passwords[pipeline],
        "SPOTIFY_ASSETS_MYSQL_DATABASE": database,
    }
    if mysql_server.ca:
        env["SPOTIFY_ASSETS_MYSQL_SSL_CA"] = mysql_server.ca
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return database, {"host": host, "port": int(port), "user": bi, "password": passwords[bi]}


def _materialize(key: str):  # type: ignore[no-untyped-def]
    w = windowed()
    return dg.materialize(
        [w.raw, w.tables, *PLAYLIST_VIEWS, w.raw_checks, w.table_checks],
        partition_key=key,
        resources=build_resources(load_settings()),
    )


def _counts(client: mysql_target.MySQLClient) -> dict[str, dict[str, int]]:
    out = {}
    for table in TABLES:
        found = client.query(f"SELECT window_start, COUNT(*) AS n FROM {client.qualified(table)} GROUP BY window_start")
        out[table] = {str(w): int(n) for w, n in zip(found["window_start"], found["n"])}
    return out


def test_raw_to_tables_views_checks_and_features_in_mysql(deployed, mysql_server: MySQLServer) -> None:  # type: ignore[no-untyped-def]
    database, bi = deployed
    resources = build_resources(load_settings())
    warehouse = resources["warehouse"]
    assert isinstance(warehouse, MySQLWarehouse) and isinstance(resources["warehouse_io_manager"], WarehouseMySQLIOManager)
    # the password is bound by its variable's name, never by value
    password = connection_fields(load_settings().mysql)["password"]  # type: ignore[arg-type]
    assert isinstance(password, dg.EnvVar) and password.env_var_name == "SPOTIFY_ASSETS_MYSQL_PASSWORD"

    keys = windows().get_partition_keys()[-2:]
    for key in keys:
        result = _materialize(key)
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(quality.TABLE_CHECKS) + len(quality.RAW_CHECKS)
        assert [f"{c.asset_key.to_user_string()}/{c.check_name}: {c.description}" for c in checks if not c.passed] == []
    client = mysql_target.client_for(mysql_server.url, database)  # as the administrator
    once = _counts(client)
    _materialize(keys[-1])
    _materialize(keys[-1])
    assert _counts(client) == once  # three runs of a window = one
    newest = str(pd.Timestamp(windows().time_window_for_partition_key(keys[-1]).start))
    assert once["playlist_tracks"][newest] == 60 + 7 and once["songs"][newest] == 61 and once["playlists"][newest] == 2
    assert len(client.query(f"SELECT * FROM {client.qualified('top_artists')}")) == 5
    names = set(client.query(f"SELECT name FROM {client.qualified('artists')}")["name"])
    assert "Кино 周杰伦 محمد" in names

    # the model's features: a whole table written through the IO manager
    result = dg.materialize([popularity_features], resources=build_resources(load_settings()))
    assert result.success
    features = client.query(f"SELECT * FROM {client.qualified('popularity_features')}")
    songs = client.query(f"SELECT COUNT(*) AS n FROM {client.qualified('songs')}")["n"].iloc[0]
    assert len(features) == songs > 61  # one row per song and window

    # the IO manager loads a window of a table back with its dtypes
    seen: list[pd.DataFrame] = []

    @dg.asset(partitions_def=windows())
    def songs_reader(songs: pd.DataFrame) -> None:
        seen.append(songs)

    w = windowed()
    result = dg.materialize(
        [w.tables, songs_reader], selection=[songs_reader], partition_key=keys[-1], resources=build_resources(load_settings())
    )
    assert result.success
    loaded = seen[0]
    assert len(loaded) == 61 and str(loaded["window_start"].dtype) == "datetime64[us, UTC]"
    assert set(loaded["window_start"]) == {pd.Timestamp(newest)}

    # the BI user reads the views over TLS and can change nothing
    conn = pymysql.connect(**bi, database=database, ssl_ca=mysql_server.ca, ssl_verify_cert=bool(mysql_server.ca))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM current_top_songs")
            assert cur.fetchone()[0] == 61
            if mysql_server.ca:
                cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                assert cur.fetchone()[1]
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cur.execute("DELETE FROM songs")
    finally:
        conn.close()


def test_listening_exports_are_ingested_into_mysql_once(monkeypatch, mysql_server: MySQLServer) -> None:  # type: ignore[no-untyped-def]
    """SPOTIFY_ASSETS_DEPLOYMENT=local (exports in the data directory), tables in MySQL: the
    listening job appends each play once, builds the listening views and the dashboard."""
    from spotify_assets_tests.defs.listening.test_assets import SAMPLE_PLAYS, _drop, _run, _streams_meta
    from spotify_assets.lib.dashboard.render import chart_count
    from spotify_assets.lib.samples.listening import sample_export_files

    database = mysql_server.new_database("listening")
    host, port = mysql_server.url.split("@", 1)[1].rstrip("/").rsplit(":", 1)
    for name, value in {
        "SPOTIFY_ASSETS_WAREHOUSE": "mysql", "SPOTIFY_ASSETS_MYSQL_HOST": host, "SPOTIFY_ASSETS_MYSQL_PORT": port,
        "SPOTIFY_ASSETS_MYSQL_USER": "root", "SPOTIFY_ASSETS_MYSQL_DATABASE": database,
    }.items():
        monkeypatch.setenv(name, value)
    _drop(sample_export_files())
    with dg.instance_for_test() as instance:
        first = _run(instance)
        assert first.success, [str(e.event_specific_data.error) for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
        assert _streams_meta(first)["plays_added"] == SAMPLE_PLAYS
        assert _streams_meta(_run(instance))["plays_added"] == 0
    client = mysql_target.client_for(mysql_server.url, database)
    counted = client.query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT listener) AS listeners FROM {client.qualified('streams')}")
    assert (int(counted["n"].iloc[0]), int(counted["listeners"].iloc[0])) == (SAMPLE_PLAYS, 3)
    assert len(client.query(f"SELECT * FROM {client.qualified('listening_by_country')}")) > 0
    page = (load_settings().data_dir / "dashboard" / "index.html").read_text(encoding="utf-8")
    assert chart_count(page, "listening-kpis") >= 9
