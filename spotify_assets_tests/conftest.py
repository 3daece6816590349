"""Shared fixtures: a clean environment, moto's S3 server, and the Spotify API emulator."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from spotify_assets_tests.support.emulator import SpotifyEmulator

# Variables the project reads: none may leak in from the machine running the tests.
_PREFIXES = ("SPOTIFY_", "SNOWFLAKE_", "AWS_", "SLACK_", "DAGSTER_HOME", "DAGSTER_WEBSERVER_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SPOTIFY_ASSETS_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(autouse=True)
def no_dagster_instance_left_entered() -> Iterator[None]:
    """A test must close every Dagster context it opens.

    Entering a DagsterInstance (which `build_schedule_context(instance=...)` does for the
    context's own copy) sets a process-wide "current defs state storage". Left open, it points
    at a disposed instance, and the next test that loads the definitions fails far from the
    cause ("Attempted to resolve undefined DagsterInstance weakref"). Fail here instead.
    """
    from dagster._core.storage.defs_state import base

    before = base.DefsStateStorage.get()
    yield
    if base.DefsStateStorage.get() is not before:
        base._current_storage.set(before)  # so that only the leaking test fails
        pytest.fail("this test left a Dagster instance entered (a schedule/sensor context not closed: use `with`)")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback, spoken to by the real boto3."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Standard AWS variables pointing at moto, and a fresh bucket."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return {**env, "bucket": bucket}


@pytest.fixture
def emulator() -> Iterator[SpotifyEmulator]:
    with SpotifyEmulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict]:
    """fakesnow's Snowflake server on loopback, spoken to by the real Snowflake connector.

    Yields the connection arguments (host, port, protocol="http", user, password, account).
    Its databases live in one shared in-memory DuckDB: give each test its own database name.
    """
    import fakesnow
    import fakesnow.arrow

    original = fakesnow.arrow.timestamp_to_sf_struct

    def keep_nulls(ts):  # type: ignore[no-untyped-def]
        # fakesnow 0.12.1 builds Snowflake's timestamp struct without a validity mask, so a
        # NULL timestamp reaches the connector as 1970-01-01. Carry the nulls over.
        import pyarrow as pa

        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        struct = original(ts)
        if ts.null_count == 0:
            return struct
        return pa.StructArray.from_arrays(
            [struct.field(i) for i in range(struct.type.num_fields)],
            fields=list(struct.type),
            mask=ts.is_null(),
        )

    fakesnow.arrow.timestamp_to_sf_struct = keep_nulls
    try:
        with fakesnow.server() as kwargs:
            yield kwargs
    finally:
        fakesnow.arrow.timestamp_to_sf_struct = original


@pytest.fixture
def snowflake_database(fakesnow_server: dict) -> str:
    """A fresh database name on the fakesnow server (created by whoever connects first)."""
    return f"TEST_{uuid.uuid4().hex[:10].upper()}"
