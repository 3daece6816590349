"""The production deployment on loopback, for tests: the Spotify API emulator, moto's S3 server
and fakesnow's Snowflake server, named by the same environment variables as in production."""

from typing import Any

import pytest

from spotify_assets import production
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.snowflake import insert_rows


def configure(
    monkeypatch: pytest.MonkeyPatch,
    *,
    s3_env: dict[str, str],
    fakesnow_server: dict[str, Any],
    database: str,
    emulator: SpotifyEmulator,
    playlist_ids: list[str],
) -> None:
    """Set the production environment (as an operator would) and create the database, as
    sql/snowflake/setup.sql does. Rows reach fakesnow by INSERT (see support/snowflake.py)."""
    import snowflake.connector

    env = {
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_S3_BUCKET": s3_env["bucket"],
        "SPOTIFY_CLIENT_ID": emulator.client_id,
        "SPOTIFY_CLIENT_SECRET": emulator.client_secret,
        "SPOTIFY_API_URL": emulator.api_url,
        "SPOTIFY_ACCOUNTS_URL": emulator.accounts_url,
        "SPOTIFY_PLAYLISTS": ",".join(playlist_ids),
        "SNOWFLAKE_ACCOUNT": fakesnow_server["account"],
        "SNOWFLAKE_USER": fakesnow_server["user"],
        "SNOWFLAKE_PASSWORD": fakesnow_server["password"],
        "SNOWFLAKE_DATABASE": database,
        "SNOWFLAKE_HOST": fakesnow_server["host"],
        "SNOWFLAKE_PORT": str(fakesnow_server["port"]),
        "SNOWFLAKE_PROTOCOL": "http",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(production, "stage_frame", insert_rows)
    with snowflake.connector.connect(**fakesnow_server) as conn:
        conn.cursor().execute(f"CREATE DATABASE {database}")
