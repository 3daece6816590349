"""Settings: every bad value is refused when the definitions load, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spotify_assets.lib.settings import DEFAULT_DATA_DIR, Settings, SettingsError, SpotifySettings
from spotify_assets.lib.spotify.client import parse_playlist_ref

PID = "5ABHKGoOzxkaa28ttQV9sE"
CREDS = {"SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "secret"}
PRODUCTION = {
    "SPOTIFY_ASSETS_DEPLOYMENT": "production",
    "SPOTIFY_ASSETS_S3_BUCKET": "bucket",
    "SNOWFLAKE_ACCOUNT": "acct",
    "SNOWFLAKE_USER": "svc",
    "SNOWFLAKE_PASSWORD": "pw",
}


def problems(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    return str(info.value)


def test_defaults_are_the_embedded_sample() -> None:
    s = Settings.from_env({})
    assert (s.deployment, s.spotify.source, s.data_dir) == ("local", "sample", DEFAULT_DATA_DIR.resolve())
    assert s.first_window == "2026-01-01-00:00"
    assert s.s3 is None and s.snowflake is None


@pytest.mark.parametrize(
    "ref",
    [
        PID,
        f"spotify:playlist:{PID}",
        f"spotify:user:someone:playlist:{PID}",
        f"https://open.spotify.com/playlist/{PID}",
        f"https://open.spotify.com/playlist/{PID}?si=f00ba4&pt=1",
        f"open.spotify.com/intl-de/playlist/{PID}",
        f"  {PID}  ",
    ],
)
def test_playlist_references(ref: str) -> None:
    assert parse_playlist_ref(ref) == PID


@pytest.mark.parametrize(
    "bad",
    ["not-a-playlist", f"spotify:track:{PID}", f"https://open.spotify.com/album/{PID}", PID[:-1], f"https://example.com/playlist/{PID}"],
)
def test_bad_playlist_reference_is_refused_with_the_value(bad: str) -> None:
    message = problems({**CREDS, "SPOTIFY_PLAYLISTS": f"{PID},{bad}"})
    assert "SPOTIFY_PLAYLISTS" in message and repr(bad) in message


def test_api_source_with_playlists_deduplicated() -> None:
    s = Settings.from_env({**CREDS, "SPOTIFY_PLAYLISTS": f"{PID}, spotify:playlist:{PID},37i9dQZF1DXcBWIGoYBM5M"})
    assert s.spotify.source == "api"
    assert s.spotify.playlist_ids == (PID, "37i9dQZF1DXcBWIGoYBM5M")
    assert not s.spotify.user_auth
    assert Settings.from_env({**CREDS, "SPOTIFY_PLAYLISTS": PID, "SPOTIFY_REFRESH_TOKEN": "r"}).spotify.user_auth


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SPOTIFY_ASSETS_DEPLOYMENT": "prod"}, ["SPOTIFY_ASSETS_DEPLOYMENT='prod'"]),
        ({"SPOTIFY_PLAYLISTS": PID}, ["SPOTIFY_PLAYLISTS is set but no credentials"]),
        ({"SPOTIFY_CLIENT_ID": "id", "SPOTIFY_PLAYLISTS": PID}, ["SPOTIFY_CLIENT_SECRET is not set"]),
        ({"SPOTIFY_REFRESH_TOKEN": "r", "SPOTIFY_PLAYLISTS": PID}, ["SPOTIFY_CLIENT_ID is not set", "SPOTIFY_CLIENT_SECRET is not set"]),
        (CREDS, ["SPOTIFY_PLAYLISTS is not set"]),
        ({"SPOTIFY_API_URL": "ftp://x"}, ["SPOTIFY_API_URL='ftp://x'"]),
        ({"SPOTIFY_ACCOUNTS_URL": "accounts"}, ["SPOTIFY_ACCOUNTS_URL='accounts'"]),
        ({"SPOTIFY_MAX_RETRY_AFTER_SECONDS": "soon"}, ["SPOTIFY_MAX_RETRY_AFTER_SECONDS='soon'"]),
        ({"SPOTIFY_MAX_ATTEMPTS": "0"}, ["SPOTIFY_MAX_ATTEMPTS='0' must be between 1 and 10"]),
        ({"SPOTIFY_CONCURRENCY": "1000"}, ["SPOTIFY_CONCURRENCY='1000' must be between 1 and 64"]),
        ({"SPOTIFY_MARKET": "usa"}, ["SPOTIFY_MARKET='usa'"]),
        ({"SPOTIFY_ASSETS_FIRST_WINDOW": "2026-13-01"}, ["SPOTIFY_ASSETS_FIRST_WINDOW='2026-13-01'"]),
        (
            {"SPOTIFY_ASSETS_DEPLOYMENT": "production"},
            ["SPOTIFY_ASSETS_S3_BUCKET is not set", "SNOWFLAKE_ACCOUNT is not set", "SNOWFLAKE_USER is not set", "no Snowflake credentials"],
        ),
        ({**PRODUCTION, "SNOWFLAKE_PASSWORD": "", "SNOWFLAKE_PRIVATE_KEY_PATH": "/nonexistent/key.p8"}, ["SNOWFLAKE_PRIVATE_KEY_PATH: no file"]),
        ({**PRODUCTION, "SNOWFLAKE_DATABASE": "spotify; drop"}, ["SNOWFLAKE_DATABASE='spotify; drop'"]),
        ({"SPOTIFY_ASSETS_VOLUME_DROP_SHARE": "1.5"}, ["SPOTIFY_ASSETS_VOLUME_DROP_SHARE='1.5' must be between 0 and 1"]),
        ({"SPOTIFY_ASSETS_FRESHNESS_GRACE_HOURS": "-1"}, ["SPOTIFY_ASSETS_FRESHNESS_GRACE_HOURS='-1'"]),
        ({"SPOTIFY_ASSETS_ALERT_WEBHOOK": "hooks.example.com/T0"}, ["SPOTIFY_ASSETS_ALERT_WEBHOOK is not an http(s) URL"]),
        ({"SPOTIFY_ASSETS_SLACK_CHANNEL": "#data"}, ["SPOTIFY_ASSETS_SLACK_CHANNEL is set but SLACK_BOT_TOKEN is not"]),
        ({"DAGSTER_WEBSERVER_URL": "localhost:3000"}, ["DAGSTER_WEBSERVER_URL='localhost:3000'"]),
    ],
)
def test_each_problem_names_its_variable(env: dict[str, str], names: list[str]) -> None:
    message = problems(env)
    for name in names:
        assert name in message


def test_all_problems_are_reported_at_once() -> None:
    message = problems({"SPOTIFY_ASSETS_DEPLOYMENT": "production", "SPOTIFY_CONCURRENCY": "x", "SPOTIFY_PLAYLISTS": "nope"})
    for name in ("SPOTIFY_ASSETS_S3_BUCKET", "SPOTIFY_CONCURRENCY", "SPOTIFY_PLAYLISTS"):
        assert name in message


def test_production_settings() -> None:
    s = Settings.from_env({**PRODUCTION, "SPOTIFY_ASSETS_S3_PREFIX": "/team/spotify/"})
    assert s.s3 is not None and (s.s3.bucket, s.s3.prefix) == ("bucket", "team/spotify")
    assert s.snowflake is not None and (s.snowflake.database, s.snowflake.auth) == ("SPOTIFY", "password")


def test_secret_values_are_not_in_settings_or_errors() -> None:
    s = Settings.from_env({**CREDS, "SPOTIFY_CLIENT_SECRET": "s3cr3t-value", "SPOTIFY_PLAYLISTS": PID, "SPOTIFY_REFRESH_TOKEN": "r3fr3sh"})
    assert "s3cr3t-value" not in repr(s) and "r3fr3sh" not in repr(s)
    message = problems({"SPOTIFY_CLIENT_SECRET": "s3cr3t-value", "SPOTIFY_PLAYLISTS": PID})
    assert "s3cr3t-value" not in message
    hook = "ftp://hooks.example.com/services/T0/B0/s3cr3t-hook"
    assert "s3cr3t-hook" not in problems({"SPOTIFY_ASSETS_ALERT_WEBHOOK": hook})
    alerts = Settings.from_env({"SPOTIFY_ASSETS_ALERT_WEBHOOK": hook.replace("ftp", "https"), "SLACK_BOT_TOKEN": "xoxb-s3cr3t"}).alerts
    assert "s3cr3t" not in repr(alerts) and alerts.webhook and alerts.slack_channel is None


def test_quality_and_alert_settings() -> None:
    s = Settings.from_env(
        {"SPOTIFY_ASSETS_VOLUME_DROP_SHARE": "0.25", "SPOTIFY_ASSETS_FRESHNESS_GRACE_HOURS": "2.5",
         "SLACK_BOT_TOKEN": "xoxb-1", "SPOTIFY_ASSETS_SLACK_CHANNEL": "#data", "DAGSTER_WEBSERVER_URL": "https://dagster.example.com/"}
    )
    assert (s.quality.volume_drop_share, s.quality.freshness_grace_hours) == (0.25, 2.5)
    assert (s.alerts.slack_channel, s.alerts.webserver_url, s.alerts.webhook) == ("#data", "https://dagster.example.com", False)
    assert s.alerts_file == s.data_dir / "alerts.jsonl"


def validate_workspace(tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """`dagster definitions validate` on workspace.yaml, as a user or a deploy step runs it."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "SNOWFLAKE_"))}
    env.update({"DAGSTER_HOME": str(tmp_path), **env_vars})
    return subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root, env=env, capture_output=True, text=True, timeout=180,
    )


@pytest.mark.slow
def test_definitions_load_with_defaults(tmp_path: Path) -> None:
    result = validate_workspace(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_definitions_refuse_to_load_and_name_the_variable(tmp_path: Path) -> None:
    result = validate_workspace(
        tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_PLAYLISTS="https://example.com/x"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SPOTIFY_ASSETS_S3_BUCKET is not set" in output
    assert "'https://example.com/x'" in output


def test_spotify_client_settings_have_upper_bounds_all_named_at_once() -> None:
    # Accepted before: a run could be told to sleep for years or retry a hundred million times.
    message = problems(
        {
            "SPOTIFY_MAX_RETRY_AFTER_SECONDS": "1e12",
            "SPOTIFY_MAX_ATTEMPTS": "100000000",
            "SPOTIFY_REQUEST_TIMEOUT_SECONDS": "100000000",
            "SPOTIFY_REQUEST_DEADLINE_SECONDS": "0.5",
            "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS": "1000",
        }
    )
    for expected in (
        "SPOTIFY_MAX_RETRY_AFTER_SECONDS='1e12' must be between 0 and 300",
        "SPOTIFY_MAX_ATTEMPTS='100000000' must be between 1 and 10",
        "SPOTIFY_REQUEST_TIMEOUT_SECONDS='100000000' must be between 0.1 and 60",
        "SPOTIFY_REQUEST_DEADLINE_SECONDS='0.5' must be between 1 and 120",
        "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS='1000' must be between 0 and 168",
    ):
        assert expected in message


def test_spotify_client_settings_within_bounds_are_kept() -> None:
    s = Settings.from_env(
        {"SPOTIFY_MAX_RETRY_AFTER_SECONDS": "300", "SPOTIFY_MAX_ATTEMPTS": "10", "SPOTIFY_REQUEST_TIMEOUT_SECONDS": "60",
         "SPOTIFY_REQUEST_DEADLINE_SECONDS": "45", "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS": "168"}
    ).spotify
    assert (s.retry.max_retry_after_s, s.retry.max_attempts, s.retry.timeout_s, s.retry.deadline_s, s.max_window_lag_hours) == (300, 10, 60, 45, 168)
    assert Settings.from_env({}).spotify.retry.deadline_s == 30


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://127.0.0.1:99999/v1", "Port out of range"), ("http://127.0.0.1:http/v1", "valid URL"), ("http:///v1", "with a host")],
)
def test_api_urls_that_can_never_work_are_refused_at_load(url: str, why: str) -> None:
    message = problems({"SPOTIFY_API_URL": url, "SPOTIFY_ACCOUNTS_URL": url})
    assert f"SPOTIFY_API_URL={url!r}" in message and f"SPOTIFY_ACCOUNTS_URL={url!r}" in message
    assert why in message


# --- what the deployment writes, checked at load ------------------------------------------------


def test_an_unwritable_data_dir_is_named_with_the_other_problems_once(tmp_path: Path) -> None:
    # Works as root too (root writes through any mode bits): the data directory's parent is a
    # regular file, so nothing can create it.
    (tmp_path / "file").write_text("x")
    data_dir = tmp_path / "file" / "data"
    message = problems({"SPOTIFY_ASSETS_DATA_DIR": str(data_dir), "SPOTIFY_ASSETS_FIRST_WINDOW": "soon"})
    assert "SPOTIFY_ASSETS_FIRST_WINDOW='soon'" in message  # all at once
    assert f"SPOTIFY_ASSETS_DATA_DIR={str(data_dir)!r}: the data directory {data_dir} cannot be created" in message
    assert f"{tmp_path / 'file'} is a file, not a directory" in message
    # one cause, one line: not again for the DuckDB file, its lock, models/ or the alerts file
    assert message.count(" - ") == 2, message


def test_a_duckdb_path_that_cannot_be_written_names_its_own_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "data").mkdir()
    message = problems({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "data"), "SPOTIFY_ASSETS_DUCKDB_PATH": str(tmp_path / "file" / "w.duckdb")})
    assert f"SPOTIFY_ASSETS_DUCKDB_PATH={str(tmp_path / 'file' / 'w.duckdb')!r}: the DuckDB warehouse" in message
    assert "SPOTIFY_ASSETS_DATA_DIR" not in message
    # the lock file beside the warehouse: a directory where the lock file goes
    (tmp_path / "data" / "warehouse.duckdb.lock").mkdir()
    message = problems({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "data")})
    assert "SPOTIFY_ASSETS_DATA_DIR (warehouse.duckdb in the data directory): the DuckDB warehouse's lock file" in message
    assert "is a directory, not a file" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode 0o500 directory: the file-parent tests cover root")
def test_a_read_only_data_dir_is_refused_by_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o500)
    try:
        message = problems({"SPOTIFY_ASSETS_DATA_DIR": str(data_dir)})
    finally:
        data_dir.chmod(0o700)
    assert f"SPOTIFY_ASSETS_DATA_DIR={str(data_dir)!r}: the data directory {data_dir} is not writable" in message


def test_the_check_leaves_nothing_behind(tmp_path: Path) -> None:
    # a missing data directory is judged by its parent, not created; the probe file is removed
    s = Settings.from_env({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "new" / "data")})
    assert s.data_dir == tmp_path / "new" / "data" and list(tmp_path.iterdir()) == []
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "warehouse.duckdb").write_bytes(b"db")
    Settings.from_env({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "data")})
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["warehouse.duckdb"]
    assert (tmp_path / "data" / "warehouse.duckdb").read_bytes() == b"db"


def test_production_checks_only_what_it_writes_locally(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    unwritable = {**PRODUCTION, "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "file" / "data")}
    # with no alert destination, failed checks are written to the alerts file in the data dir
    assert "SPOTIFY_ASSETS_DATA_DIR" in problems(unwritable)
    assert "alerts file" in problems(unwritable)
    # with Slack, nothing is written locally: raw files in S3, tables in Snowflake
    s = Settings.from_env({**unwritable, "SLACK_BOT_TOKEN": "xoxb-1", "SPOTIFY_ASSETS_SLACK_CHANNEL": "#data"})
    assert s.deployment == "production"


@pytest.mark.slow
def test_definitions_refuse_an_unwritable_data_dir_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = validate_workspace(tmp_path, SPOTIFY_ASSETS_DATA_DIR=str(tmp_path / "file" / "data"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SPOTIFY_ASSETS_DATA_DIR=" in output and f"{tmp_path / 'file'} is a file, not a directory" in output


def test_row_reuse_defaults_to_rows_without_popularity_and_a_full_read_every_3_days() -> None:
    s = Settings.from_env({}).spotify
    assert (s.reuse_rows, s.full_reread_windows) == ("without_popularity", 9)
    s = Settings.from_env({"SPOTIFY_ASSETS_REUSE_ROWS": "Never", "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS": "90"}).spotify
    assert (s.reuse_rows, s.full_reread_windows) == ("never", 90)
    s = Settings.from_env({"SPOTIFY_ASSETS_REUSE_ROWS": "always", "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS": "1"}).spotify
    assert (s.reuse_rows, s.full_reread_windows) == ("always", 1)
    # The resource's config carries them (plain values) and gives them back.
    assert SpotifySettings.from_dict(s.as_dict()) == s


def test_bad_row_reuse_settings_are_named_together_at_load() -> None:
    message = problems(
        {"SPOTIFY_ASSETS_REUSE_ROWS": "sometimes", "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS": "0", "SPOTIFY_CONCURRENCY": "0"}
    )
    assert "SPOTIFY_ASSETS_REUSE_ROWS='sometimes' is not one of: without_popularity, always, never" in message
    assert "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS='0' must be between 1 and 90" in message
    assert "SPOTIFY_CONCURRENCY='0'" in message
    assert "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS='91' must be between 1 and 90" in problems({"SPOTIFY_ASSETS_FULL_REREAD_WINDOWS": "91"})
    assert "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS='2.5' is not a whole number" in problems({"SPOTIFY_ASSETS_FULL_REREAD_WINDOWS": "2.5"})
