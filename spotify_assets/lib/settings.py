"""Every setting the project reads from the environment, validated in one pass.

`Settings.from_env` is called when the Dagster definitions load, so a missing or invalid
value stops the code location from loading with a message naming the variable, instead of
failing halfway through a run. Secrets are not kept here: the resources read them through
`dg.EnvVar` at run time, so their values never reach the UI. This module only checks that
they are set. The directories and files the deployment will write locally are checked here
too (`path_problems`), each named by the variable that put it there.
"""

from __future__ import annotations

import errno
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

from spotify_assets.lib.spotify.client import (
    DEFAULT_ACCOUNTS_URL,
    DEFAULT_API_URL,
    RetryPolicy,
    parse_playlist_refs,
    url_problem,
)
from spotify_assets.lib.spotify.reuse import FULL_REREAD_WINDOWS, ROWS_POLICIES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_FIRST_WINDOW = "2026-01-01"

Deployment = Literal["local", "production"]
WAREHOUSE_TARGETS = ("duckdb", "snowflake", "mysql", "iceberg")


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"spotify-assets cannot start, fix the environment:\n{lines}")


@dataclass(frozen=True)
class SpotifySettings:
    """Where and how to read Spotify. `source == "sample"` when no credentials are set."""

    source: Literal["api", "sample"]
    playlist_ids: tuple[str, ...] = ()
    user_auth: bool = False  # a refresh token is set: calls run as that user
    api_url: str = DEFAULT_API_URL
    accounts_url: str = DEFAULT_ACCOUNTS_URL
    market: str | None = None
    retry: RetryPolicy = RetryPolicy()  # attempts, waits and per-request deadlines
    concurrency: int = 8
    max_window_lag_hours: float = 24.0
    # Rows of a playlist whose snapshot_id has not changed since the previous window are taken
    # from that window's document instead of being read again (lib/spotify/reuse.py):
    # "always", "never", or "without_popularity" (only when those rows carry no popularity,
    # a value that belongs to the window it was read in).
    reuse_rows: str = "without_popularity"
    # A playlist is read fully again once its rows have been reused this many windows in a row
    # (9 = every 3 days): what snapshot_id does not track (a track becoming unavailable) shows.
    full_reread_windows: int = FULL_REREAD_WINDOWS

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the Spotify resource's config, as the UI shows it). An unset value is
        left out, as Dagster's config maps hold no nulls: it defaults to None again."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpotifySettings:
        """The inverse of `as_dict`."""
        return cls(**{**values, "playlist_ids": tuple(values["playlist_ids"]), "retry": RetryPolicy(**values["retry"])})


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str


@dataclass(frozen=True)
class SnowflakeSettings:
    account: str
    user: str
    database: str
    warehouse: str | None
    role: str | None
    auth: Literal["password", "private_key", "private_key_path"]
    schema: str = "ANALYTICS"
    private_key_password: bool = False  # SNOWFLAKE_PRIVATE_KEY_PASSWORD is set (encrypted key)
    # Where the connector connects, when not <account>.snowflakecomputing.com over https
    # (PrivateLink, a proxy, or a Snowflake emulator on loopback in the tests).
    host: str | None = None
    port: int | None = None
    protocol: Literal["https", "http"] = "https"


@dataclass(frozen=True)
class MySQLSettings:
    """The MySQL warehouse (RDS MySQL, Aurora MySQL, MariaDB): where it is and who connects.
    The password is only known to be set here (SPOTIFY_ASSETS_MYSQL_PASSWORD, read through
    `dg.EnvVar`)."""

    host: str
    user: str
    database: str = "spotify"
    port: int = 3306
    password: bool = False  # SPOTIFY_ASSETS_MYSQL_PASSWORD is set
    ssl_ca: str | None = None  # the CA bundle that verifies the server (RDS: global-bundle.pem)


@dataclass(frozen=True)
class LakeSettings:
    """The Iceberg lake (SPOTIFY_ASSETS_WAREHOUSE=iceberg). Locally: pyiceberg's SQL catalog on
    SQLite and the data files under `local_dir`; in production: the Glue database `namespace`,
    data files under `s3_uri`, SQL on the Athena workgroup `athena_workgroup`."""

    namespace: str
    local_dir: Path | None = None
    s3_uri: str | None = None
    athena_workgroup: str | None = None


@dataclass(frozen=True)
class WarehouseSettings:
    """The local DuckDB warehouse, and what the analytics views take as parameters."""

    duckdb_path: Path
    schema: str = "analytics"
    recent_release_days: int = 365


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the warning checks."""

    volume_drop_share: float = 0.5  # a playlist losing more than this share of its rows warns
    freshness_grace_hours: float = 1.0  # the newest raw window may end up to 8 h + this ago


@dataclass(frozen=True)
class ListeningSettings:
    """Listening-history ingestion."""

    # Largest export file read, in MB: a plain file, a zip archive, and each file inside a zip
    # (uncompressed). Spotify's own files are about 12 MB; a larger one is refused, named.
    max_file_mb: int = 64
    # SPOTIFY_ASSETS_IP_HASH_KEY: with a key, `ip_hash` is a keyed hash of the IP address (a secret)
    ip_hash_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AlertSettings:
    """Where failed asset checks are announced. Secrets (the Slack token, the webhook URL,
    which often embeds one) are only known to be set here; they are read at send time."""

    webhook: bool = False  # SPOTIFY_ASSETS_ALERT_WEBHOOK is set
    slack_channel: str | None = None  # with SLACK_BOT_TOKEN set
    webserver_url: str = "http://localhost:3000"  # DAGSTER_WEBSERVER_URL: links in alerts


@dataclass(frozen=True)
class Settings:
    deployment: Deployment
    data_dir: Path
    first_window: str  # the first 8-hour window, 'YYYY-MM-DD-00:00'
    spotify: SpotifySettings
    warehouse: WarehouseSettings
    s3: S3Settings | None = None
    snowflake: SnowflakeSettings | None = None
    quality: QualitySettings = QualitySettings()
    alerts: AlertSettings = AlertSettings()
    listening: ListeningSettings = ListeningSettings()
    # SPOTIFY_ASSETS_WAREHOUSE: where the tables, views and checks go (the deployment decides
    # where raw snapshots and models go)
    warehouse_target: str = "duckdb"
    mysql: MySQLSettings | None = None
    lake: LakeSettings | None = None

    @property
    def warehouse_kind(self) -> str:
        """The warehouse the tables live in, as the UI's kinds name it."""
        return self.warehouse_target

    @property
    def alerts_file(self) -> Path:
        """Where alerts go when no destination is configured (one JSON object a line)."""
        return self.data_dir / "alerts.jsonl"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, check_paths: bool = True) -> Settings:
        """The settings in `env`, or SettingsError listing every problem. `check_paths`: also
        check that every local directory and file the deployment writes can be written."""
        reader = _Reader(env)
        deployment = reader.choice("SPOTIFY_ASSETS_DEPLOYMENT", ("local", "production"), "local")
        data_dir = Path(reader.text("SPOTIFY_ASSETS_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()
        first_window = reader.date("SPOTIFY_ASSETS_FIRST_WINDOW", DEFAULT_FIRST_WINDOW)
        spotify = _spotify_settings(reader)
        warehouse_target = reader.choice(
            "SPOTIFY_ASSETS_WAREHOUSE", WAREHOUSE_TARGETS, "snowflake" if deployment == "production" else "duckdb"
        )
        warehouse = WarehouseSettings(
            duckdb_path=Path(reader.text("SPOTIFY_ASSETS_DUCKDB_PATH") or data_dir / "warehouse.duckdb").expanduser().resolve(),
            recent_release_days=int(
                reader.number("SPOTIFY_ASSETS_RECENT_RELEASE_DAYS", WarehouseSettings.recent_release_days, minimum=1, maximum=36500, integer=True)
            ),
        )
        quality = QualitySettings(
            volume_drop_share=reader.number("SPOTIFY_ASSETS_VOLUME_DROP_SHARE", QualitySettings.volume_drop_share, minimum=0, maximum=1),
            freshness_grace_hours=reader.number("SPOTIFY_ASSETS_FRESHNESS_GRACE_HOURS", QualitySettings.freshness_grace_hours, minimum=0, maximum=24 * 30),
        )
        alerts = _alert_settings(reader)
        listening = ListeningSettings(
            max_file_mb=int(reader.number("SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB", ListeningSettings.max_file_mb, minimum=1, maximum=4096, integer=True)),
            ip_hash_key=reader.text("SPOTIFY_ASSETS_IP_HASH_KEY") or None,
        )
        s3 = snowflake = mysql = lake = None
        if deployment == "production":
            s3 = S3Settings(
                bucket=reader.required("SPOTIFY_ASSETS_S3_BUCKET", "the S3 bucket for raw snapshots"),
                prefix=(reader.text("SPOTIFY_ASSETS_S3_PREFIX") or "spotify-assets").strip("/"),
            )
        if warehouse_target == "snowflake":
            snowflake = _snowflake_settings(reader)
        if warehouse_target == "mysql":
            mysql = _mysql_settings(reader)
        if warehouse_target == "iceberg":
            lake = _lake_settings(reader, deployment, data_dir, s3)
        if check_paths:
            reader.problems += path_problems(
                deployment=deployment,
                data_dir=data_dir,
                data_dir_var=_source("SPOTIFY_ASSETS_DATA_DIR", reader, data_dir),
                duckdb_path=warehouse.duckdb_path,
                duckdb_var=_source("SPOTIFY_ASSETS_DUCKDB_PATH", reader, warehouse.duckdb_path)
                if reader.text("SPOTIFY_ASSETS_DUCKDB_PATH")
                else f"SPOTIFY_ASSETS_DATA_DIR ({warehouse.duckdb_path.name} in the data directory)",
                alerts_to_file=not (alerts.webhook or alerts.slack_channel),
                uses_duckdb=warehouse_target == "duckdb",
            )
            if lake is not None and lake.local_dir is not None:
                found = writable_problem(lake.local_dir, directory=True)
                if found is not None:
                    variable = (
                        _source("SPOTIFY_ASSETS_LAKE_DIR", reader, lake.local_dir) if reader.text("SPOTIFY_ASSETS_LAKE_DIR")
                        else "SPOTIFY_ASSETS_DATA_DIR (lake/ in the data directory)"
                    )
                    reader.problems.append(f"{variable}: the lake directory {lake.local_dir} {found[1]}")
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(
            deployment, data_dir.resolve(), f"{first_window}-00:00", spotify, warehouse, s3, snowflake, quality, alerts,
            listening, warehouse_target, mysql, lake,
        )


def _source(name: str, reader: _Reader, value: Path) -> str:
    return f"{name}={reader.text(name)!r}" if reader.text(name) else f"{name} (unset: the default {value})"


# --- what the deployment writes ----------------------------------------------------------------


def path_problems(
    *, deployment: str, data_dir: Path, data_dir_var: str, duckdb_path: Path, duckdb_var: str, alerts_to_file: bool,
    uses_duckdb: bool = True,
) -> list[str]:
    """Every local directory and file the deployment will write that this process cannot, each
    named by the variable that set it. Locally: the data directory (raw snapshots, models,
    dashboard, alerts file) and the DuckDB file with its lock; in production only the alerts
    file, when alerts have no other destination (S3 and Snowflake are remote). A problem
    shared by several paths (one unwritable parent) is reported once."""
    data_dir = data_dir.resolve()
    checks: list[tuple[str, str, Path, bool]] = []  # variable, what, path, is a directory
    if deployment == "local":
        checks += [(data_dir_var, "the data directory", data_dir, True)]
        checks += [(data_dir_var, f"its {sub}/ directory", data_dir / sub, True) for sub in ("raw", "models", "dashboard")]
    if uses_duckdb:  # the tables in DuckDB (SPOTIFY_ASSETS_WAREHOUSE=duckdb), in either deployment
        checks += [
            (duckdb_var, "the DuckDB warehouse", duckdb_path, False),
            (duckdb_var, "the DuckDB warehouse's lock file", duckdb_path.with_name(duckdb_path.name + ".lock"), False),
        ]
    if alerts_to_file:
        checks.append((data_dir_var, "the alerts file", data_dir / "alerts.jsonl", False))
    problems: list[str] = []
    reported: set[Path] = set()
    for variable, what, path, is_dir in checks:
        found = writable_problem(path, directory=is_dir)
        if found is not None and found[0] not in reported:
            reported.add(found[0])
            problems.append(f"{variable}: {what} {path} {found[1]}")
    return problems


def writable_problem(path: Path, *, directory: bool) -> tuple[Path, str] | None:
    """Why this process could not create or write `path`: (the path at fault, why), or None.

    Tested for real, with a probe file created and removed at once (root passes `os.access` on
    a read-only mode, and a read-only file system shows only when written). Nothing is left
    behind: a missing path is judged by its nearest existing parent, which a run would create
    it in; an existing file is opened for writing, not changed.
    """
    try:
        exists = path.exists()
    except OSError as err:  # a parent this user may not enter: name it
        blocked = next((a.parent for a in reversed(path.parents) if not _stats(a)), path.parent)
        return blocked, f"cannot be reached: {blocked} cannot be entered by this user (uid {os.getuid()}): {err.strerror}"
    if not exists:
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return parent, f"cannot be created: {parent} is a file, not a directory"
        reason = _probe(parent)
        return (parent, f"cannot be created: {parent} {reason}") if reason else None
    if directory != path.is_dir():
        return path, "is a directory, not a file" if path.is_dir() else "is a file, not a directory"
    if directory:
        reason = _probe(path)
        return (path, reason) if reason else None
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as err:
        return path, _why(err)
    reason = _probe(path.parent)  # a file is replaced, or gets a journal, beside itself
    return (path.parent, f"cannot be written: its directory {path.parent} {reason}") if reason else None


def _stats(path: Path) -> bool:
    try:
        path.stat()
    except OSError:
        return False
    return True


def _probe(directory: Path) -> str | None:
    try:
        fd, name = tempfile.mkstemp(prefix=".spotify-assets-write-check-", dir=directory)
    except OSError as err:
        return _why(err)
    os.close(fd)
    os.unlink(name)
    return None


def _why(err: OSError) -> str:
    if err.errno == errno.EROFS:
        return "is on a read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"is not writable by this user (uid {os.getuid()}): permission denied"
    return f"cannot be written: {err.strerror or err}"


def _alert_settings(reader: _Reader) -> AlertSettings:
    webhook = reader.url("SPOTIFY_ASSETS_ALERT_WEBHOOK", None, secret=True)  # it may embed a token
    channel = reader.text("SPOTIFY_ASSETS_SLACK_CHANNEL")
    token = reader.text("SLACK_BOT_TOKEN")
    if channel and not token:
        reader.problems.append("SPOTIFY_ASSETS_SLACK_CHANNEL is set but SLACK_BOT_TOKEN is not: Slack alerts need both")
    return AlertSettings(
        webhook=webhook is not None,
        slack_channel=channel if token else None,
        webserver_url=reader.url("DAGSTER_WEBSERVER_URL", "http://localhost:3000"),
    )


def _spotify_settings(reader: _Reader) -> SpotifySettings:
    client_id = reader.text("SPOTIFY_CLIENT_ID")
    client_secret = reader.text("SPOTIFY_CLIENT_SECRET")
    refresh_token = reader.text("SPOTIFY_REFRESH_TOKEN")
    playlists_raw = reader.text("SPOTIFY_PLAYLISTS")
    tuning = dict(
        api_url=reader.url("SPOTIFY_API_URL", DEFAULT_API_URL),
        accounts_url=reader.url("SPOTIFY_ACCOUNTS_URL", DEFAULT_ACCOUNTS_URL),
        market=reader.market("SPOTIFY_MARKET"),
        # Upper bounds keep every wait of a run finite and sane: a run sleeps at most
        # attempts x (deadline + retry-after) per request. Defaults: RetryPolicy's.
        retry=RetryPolicy(
            max_retry_after_s=reader.number(
                "SPOTIFY_MAX_RETRY_AFTER_SECONDS", RetryPolicy.max_retry_after_s, minimum=0, maximum=300
            ),
            max_attempts=int(
                reader.number("SPOTIFY_MAX_ATTEMPTS", RetryPolicy.max_attempts, minimum=1, maximum=10, integer=True)
            ),
            timeout_s=reader.number("SPOTIFY_REQUEST_TIMEOUT_SECONDS", RetryPolicy.timeout_s, minimum=0.1, maximum=60),
            deadline_s=reader.number("SPOTIFY_REQUEST_DEADLINE_SECONDS", RetryPolicy.deadline_s, minimum=1, maximum=120),
        ),
        concurrency=int(
            reader.number("SPOTIFY_CONCURRENCY", SpotifySettings.concurrency, minimum=1, maximum=64, integer=True)
        ),
        max_window_lag_hours=reader.number(
            "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS", SpotifySettings.max_window_lag_hours, minimum=0, maximum=168
        ),
        reuse_rows=reader.choice("SPOTIFY_ASSETS_REUSE_ROWS", ROWS_POLICIES, SpotifySettings.reuse_rows),
        # 1: every window reads every page (no reuse); 90: at least one full read a month.
        full_reread_windows=int(
            reader.number(
                "SPOTIFY_ASSETS_FULL_REREAD_WINDOWS", SpotifySettings.full_reread_windows, minimum=1, maximum=90, integer=True
            )
        ),
    )
    playlist_ids: list[str] = []
    if playlists_raw:
        try:
            playlist_ids = parse_playlist_refs(playlists_raw)
        except ValueError as err:
            reader.problems.append(f"SPOTIFY_PLAYLISTS: {err}")

    if not (client_id or client_secret or refresh_token):
        if playlists_raw:
            reader.problems.append(
                "SPOTIFY_PLAYLISTS is set but no credentials are: set SPOTIFY_CLIENT_ID and "
                "SPOTIFY_CLIENT_SECRET (and SPOTIFY_REFRESH_TOKEN for Development Mode apps), "
                "or unset SPOTIFY_PLAYLISTS to run on the bundled synthetic sample"
            )
        return SpotifySettings(source="sample", **tuning)
    if not client_id:
        reader.problems.append("SPOTIFY_CLIENT_ID is not set (SPOTIFY_CLIENT_SECRET or SPOTIFY_REFRESH_TOKEN is)")
    if not client_secret:
        reader.problems.append("SPOTIFY_CLIENT_SECRET is not set (SPOTIFY_CLIENT_ID or SPOTIFY_REFRESH_TOKEN is)")
    if not playlists_raw:
        reader.problems.append(
            "SPOTIFY_PLAYLISTS is not set: list the playlists to snapshot, comma-separated "
            "(ids, spotify:playlist: URIs or open.spotify.com URLs)"
        )
    elif not playlist_ids and not any("SPOTIFY_PLAYLISTS:" in p for p in reader.problems):
        reader.problems.append("SPOTIFY_PLAYLISTS names no playlist")
    return SpotifySettings(
        source="api", playlist_ids=tuple(playlist_ids), user_auth=bool(refresh_token), **tuning
    )


def _lake_settings(reader: _Reader, deployment: str, data_dir: Path, s3: S3Settings | None) -> LakeSettings:
    namespace = reader.text("SPOTIFY_ASSETS_LAKE_DATABASE") or ("spotify_assets" if deployment == "production" else "analytics")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", namespace):
        reader.problems.append(f"SPOTIFY_ASSETS_LAKE_DATABASE={namespace!r} is not a lower-case Glue database name")
    if deployment == "local":
        local_dir = Path(reader.text("SPOTIFY_ASSETS_LAKE_DIR") or data_dir / "lake").expanduser().resolve()
        return LakeSettings(namespace=namespace, local_dir=local_dir)
    default_uri = f"s3://{s3.bucket}/{'/'.join(p for p in (s3.prefix, 'lake') if p)}" if s3 and s3.bucket else ""
    s3_uri = (reader.text("SPOTIFY_ASSETS_LAKE_S3_URI") or default_uri).rstrip("/")
    if s3_uri and not s3_uri.startswith("s3://"):
        reader.problems.append(f"SPOTIFY_ASSETS_LAKE_S3_URI={s3_uri!r} is not an s3:// location")
    return LakeSettings(
        namespace=namespace,
        s3_uri=s3_uri,
        athena_workgroup=reader.text("SPOTIFY_ASSETS_ATHENA_WORKGROUP") or "spotify_assets",
    )


def _snowflake_settings(reader: _Reader) -> SnowflakeSettings | None:
    account = reader.required("SNOWFLAKE_ACCOUNT", "the Snowflake account identifier")
    user = reader.required("SNOWFLAKE_USER", "the Snowflake user the pipeline connects as")
    auth: Literal["password", "private_key", "private_key_path"] | None = None
    for name, kind in (
        ("SNOWFLAKE_PRIVATE_KEY", "private_key"),
        ("SNOWFLAKE_PRIVATE_KEY_PATH", "private_key_path"),
        ("SNOWFLAKE_PASSWORD", "password"),
    ):
        if reader.text(name):
            auth = kind  # type: ignore[assignment]
            break
    if auth == "private_key_path":
        path = Path(reader.text("SNOWFLAKE_PRIVATE_KEY_PATH") or "").expanduser()
        if not path.is_file():
            reader.problems.append(f"SNOWFLAKE_PRIVATE_KEY_PATH: no file at {str(path)!r}")
    if auth is None:
        reader.problems.append(
            "no Snowflake credentials: set SNOWFLAKE_PRIVATE_KEY_PATH (key-pair auth, recommended), "
            "SNOWFLAKE_PRIVATE_KEY or SNOWFLAKE_PASSWORD"
        )
    if not (account and user and auth):
        return None
    return SnowflakeSettings(
        account=account,
        user=user,
        database=reader.identifier("SNOWFLAKE_DATABASE", "SPOTIFY"),
        warehouse=reader.identifier("SNOWFLAKE_WAREHOUSE", None),
        role=reader.identifier("SNOWFLAKE_ROLE", None),
        auth=auth,
        schema=reader.identifier("SNOWFLAKE_SCHEMA", "ANALYTICS") or "ANALYTICS",
        private_key_password=auth != "password" and reader.text("SNOWFLAKE_PRIVATE_KEY_PASSWORD") is not None,
        host=reader.text("SNOWFLAKE_HOST"),
        port=int(reader.number("SNOWFLAKE_PORT", 443, minimum=1, maximum=65535, integer=True)) if reader.text("SNOWFLAKE_PORT") else None,
        protocol=reader.choice("SNOWFLAKE_PROTOCOL", ("https", "http"), "https"),
    )


def _mysql_settings(reader: _Reader) -> MySQLSettings | None:
    host = reader.text("SPOTIFY_ASSETS_MYSQL_HOST")
    user = reader.text("SPOTIFY_ASSETS_MYSQL_USER")
    if not host:
        reader.problems.append("SPOTIFY_ASSETS_MYSQL_HOST is not set: it names the MySQL server (needed when SPOTIFY_ASSETS_WAREHOUSE=mysql)")
    if not user:
        reader.problems.append("SPOTIFY_ASSETS_MYSQL_USER is not set: it names the user the pipeline connects as (needed when SPOTIFY_ASSETS_WAREHOUSE=mysql)")
    database = reader.text("SPOTIFY_ASSETS_MYSQL_DATABASE") or MySQLSettings.database
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        reader.problems.append(f"SPOTIFY_ASSETS_MYSQL_DATABASE={database!r} is not a plain MySQL identifier")
    ssl_ca = reader.text("SPOTIFY_ASSETS_MYSQL_SSL_CA")
    if ssl_ca and not Path(ssl_ca).expanduser().is_file():
        reader.problems.append(f"SPOTIFY_ASSETS_MYSQL_SSL_CA: no file at {ssl_ca!r} (the CA bundle that verifies the server)")
    port = int(reader.number("SPOTIFY_ASSETS_MYSQL_PORT", MySQLSettings.port, minimum=1, maximum=65535, integer=True))
    if not (host and user):
        return None
    return MySQLSettings(
        host=host,
        user=user,
        database=database,
        port=port,
        password=reader.text("SPOTIFY_ASSETS_MYSQL_PASSWORD") is not None,
        ssl_ca=str(Path(ssl_ca).expanduser().resolve()) if ssl_ca else None,
    )


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class _Reader:
    """Reads variables, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value and value.strip() else None

    def required(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            self.problems.append(f"{name} is not set: it names {what} (needed when SPOTIFY_ASSETS_DEPLOYMENT=production)")
            return ""
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str):  # type: ignore[no-untyped-def]
        value = (self.text(name) or default).lower()
        if value not in allowed:
            self.problems.append(f"{name}={self.env.get(name)!r} is not one of: {', '.join(allowed)}")
            return default
        return value

    def number(
        self, name: str, default: float, *, minimum: float, maximum: float | None = None, integer: bool = False
    ) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {'a whole number' if integer else 'a number'}")
            return default
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            self.problems.append(f"{name}={raw!r} must be {bound}")
            return default
        return value

    @overload
    def url(self, name: str, default: str, *, secret: bool = False) -> str: ...
    @overload
    def url(self, name: str, default: None, *, secret: bool = False) -> str | None: ...
    def url(self, name: str, default: str | None, *, secret: bool = False) -> str | None:
        """An http(s) URL; a `secret` one is named in problems, never shown."""
        raw = self.text(name)
        if raw is None:
            return default
        problem = url_problem(raw)  # scheme, host, and a port in 1-65535: errors no retry fixes
        if problem:
            self.problems.append(f"{name}{'' if secret else f'={raw!r}'} {problem}")
            return default
        return raw.rstrip("/")

    def market(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        if raw != "from_token" and not re.fullmatch(r"[A-Z]{2}", raw):
            self.problems.append(f"{name}={raw!r} is not an ISO 3166-1 alpha-2 country code (like US) or from_token")
            return None
        return raw

    def date(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        try:
            datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a date like 2026-01-01")
            return default
        return raw

    def identifier(self, name: str, default: str | None) -> str | None:
        raw = self.text(name)
        if raw is None:
            return default
        if not _IDENTIFIER.match(raw):
            self.problems.append(f"{name}={raw!r} is not a plain Snowflake identifier")
            return default
        return raw


def load_settings() -> Settings:
    """The settings of this process's environment (raises SettingsError). For entry points:
    the code location (`definitions.py`), the CLI, notebooks and tests; everything they call
    receives the parsed `Settings` rather than reading the environment again."""
    return Settings.from_env(os.environ)
