"""Alerts: the `asset_check_alerts` sensor, on a real Dagster instance, posting to real HTTP
receivers on 127.0.0.1 (a webhook, and a fake Slack API spoken to by the real slack_sdk client).

The instance is `instance_for_test`: the SQLite storage `dagster dev` uses, whose event log is
sharded by run.
"""

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import dagster as dg
import pytest

import spotify_assets.defs.alerts.sensor as alerts_defs
import spotify_assets.lib.alerts.delivery as alerts_lib
from spotify_assets.defs.alerts.event_log import plain_value, read_evaluations
from spotify_assets.defs.alerts.destinations import AlertDestinations
from spotify_assets.defs.alerts.sensor import check_alerts_sensor
from spotify_assets.lib.alerts.delivery import AlertState, Evaluation, plan_alerts
from spotify_assets.lib.settings import load_settings

W1, W2 = "2026-01-01-00:00", "2026-01-01-08:00"
WEBSERVER = "http://dagster.test:3000/prefix"
WEBHOOK_PATH = "/hooks/T000/SECRET123?token=QSECRET789"
SLACK_TOKEN = "xoxb-SECRET456"
SECRETS = ("SECRET123", "QSECRET789", "SECRET456")
PAYLOAD_KEYS = {
    "id", "status", "asset", "check", "severity", "blocking", "window", "summary", "details",
    "run_id", "run_url", "asset_url", "evaluated_at", "source",
}

# --- a small asset with two checks, run on a real instance ----------------------------------

windows = dg.StaticPartitionsDefinition([W1, W2])


class SongsConfig(dg.Config):
    duplicates: int = 0
    rows: int = 10


@dg.asset(
    name="songs",
    partitions_def=windows,
    check_specs=[
        # ERROR, blocking, partitioned like the project's checks: the evaluation names its window
        dg.AssetCheckSpec("keys_unique", asset="songs", blocking=True, partitions_def=windows),
        # WARN, no partitions definition: the window comes from the run
        dg.AssetCheckSpec("row_count", asset="songs"),
    ],
)
def songs(config: SongsConfig) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="keys_unique",
                passed=config.duplicates == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{config.duplicates} duplicated song_id values" if config.duplicates else "song_id is unique",
                metadata={"duplicates": config.duplicates, "sample": dg.MetadataValue.md("| song_id |\n|---|\n| s1 |")},
            ),
            dg.AssetCheckResult(
                check_name="row_count",
                passed=config.rows > 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rows": config.rows},
            ),
        ]
    )


def run(instance: dg.DagsterInstance, window: str, duplicates: int = 0, rows: int = 10) -> str:
    result = dg.materialize(
        [songs],
        instance=instance,
        partition_key=window,
        run_config=dg.RunConfig({"songs": SongsConfig(duplicates=duplicates, rows=rows)}),
        raise_on_error=False,
    )
    return result.run_id


@dataclass
class Tick:
    cursor: str | None
    skip: str
    logs: list[tuple[int, str]]
    run_requests: list

    def said(self) -> str:
        return "\n".join([self.skip, self.cursor or ""] + [message for _, message in self.logs])


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> Tick:
    """One sensor evaluation, as the daemon does it: the cursor in, the new cursor out; the
    settings are this environment's, as the code location parses them when it loads."""
    settings = load_settings()
    resources = {"settings": settings, "alert_destinations": AlertDestinations.from_settings(settings.alerts)}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    collect = _Collect()
    context.log.addHandler(collect)
    data = check_alerts_sensor.evaluate_tick(context)
    logs = [(r.levelno, r.getMessage()) for r in collect.records]
    return Tick(data.cursor, data.skip_message or "", logs, list(data.run_requests or []))


# --- HTTP receivers on loopback -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers `status`/`reply`."""

    status: int = 200
    reply: bytes = b"ok"
    content_type: str = "text/plain"
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Type", receiver.content_type)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch):
    """A fake Slack Web API; the real slack_sdk client talks to it."""
    r = Receiver(reply=b'{"ok": true, "channel": "C0001", "ts": "1.0"}', content_type="application/json")
    monkeypatch.setattr(alerts_lib, "SLACK_API_URL", f"{r.url}/api/")
    yield r
    r.close()


@pytest.fixture(autouse=True)
def alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest clears SPOTIFY_*; these are read too and must not leak in from the machine
    for name in ("SLACK_BOT_TOKEN", "DAGSTER_WEBSERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", WEBSERVER)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


class Clock:
    """The sensor's wall clock (retry times), moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(alerts_defs, "time", c)
    return c


def use_webhook(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_ALERT_WEBHOOK", receiver.url + WEBHOOK_PATH)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- the sensor -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_failed_check_is_posted_once_with_the_documented_payload_and_no_secret(
    instance, receiver, monkeypatch
) -> None:
    use_webhook(monkeypatch, receiver)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)  # without a channel: Slack is not used
    run_id = run(instance, W1, duplicates=2)

    first = tick(instance)  # the first tick: no cursor yet

    assert len(receiver.requests) == 1  # the failed check; the passing WARN check says nothing
    sent = receiver.requests[0]
    assert sent.path == WEBHOOK_PATH
    assert sent.headers["Content-Type"] == "application/json"
    payload = sent.json()
    assert set(payload) == PAYLOAD_KEYS
    assert payload["status"] == "failed"
    assert (payload["asset"], payload["check"], payload["window"]) == ("songs", "keys_unique", W1)
    assert (payload["severity"], payload["blocking"]) == ("ERROR", True)
    assert payload["summary"] == "2 duplicated song_id values"
    assert payload["details"] == {"duplicates": 2, "sample": "| song_id |\n|---|\n| s1 |"}
    assert payload["run_id"] == run_id
    assert payload["run_url"] == f"{WEBSERVER}/runs/{run_id}"
    assert payload["asset_url"] == f"{WEBSERVER}/assets/songs?view=checks"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["evaluated_at"])
    assert re.fullmatch(r"\d+:songs:keys_unique", payload["id"])
    assert payload["source"] == "spotify-assets"

    assert first.run_requests == []
    assert first.skip == f"sent 1 alert (failed: songs/keys_unique, window {W1})"
    assert (logging.INFO, f"sent the failed alert for songs/keys_unique, window {W1} to webhook {receiver.url}") in first.logs
    assert_no_secret(sent.body.decode(), json.dumps(sent.headers), first.said())

    second = tick(instance, first.cursor)
    assert len(receiver.requests) == 1, "the same evaluation was announced twice"
    assert second.skip.startswith("no new failed check evaluation")

    # a restart: a new process, a new instance object, the cursor the daemon stored
    with dg.DagsterInstance.from_ref(instance.get_ref()) as restarted:
        tick(restarted, second.cursor)
    assert len(receiver.requests) == 1


@pytest.mark.slow
def test_the_same_window_failing_again_stays_quiet_and_a_pass_sends_one_resolved(instance, receiver, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    cursor = None

    def alerts_after(window: str, duplicates: int) -> list[dict]:
        nonlocal cursor
        before = len(receiver.requests)
        run(instance, window, duplicates=duplicates)
        cursor = tick(instance, cursor).cursor
        return [r.json() for r in receiver.requests[before:]]

    assert [(a["status"], a["window"]) for a in alerts_after(W1, 2)] == [("failed", W1)]
    assert alerts_after(W1, 3) == []  # a re-run of the window still fails: already announced
    assert [(a["status"], a["window"]) for a in alerts_after(W2, 1)] == [("failed", W2)]  # another window
    resolved = alerts_after(W1, 0)
    assert [(a["status"], a["check"], a["window"]) for a in resolved] == [("resolved", "keys_unique", W1)]
    assert resolved[0]["summary"] == "song_id is unique" and resolved[0]["severity"] == "ERROR"
    assert alerts_after(W1, 0) == []  # passing again: nothing to say
    assert [(a["status"], a["window"]) for a in alerts_after(W1, 1)] == [("failed", W1)]  # a new failure


@pytest.mark.slow
def test_a_warn_check_without_partitions_is_named_with_the_window_of_its_run(instance, receiver, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    run(instance, W2, rows=0)
    tick(instance)
    [payload] = [r.json() for r in receiver.requests]
    assert (payload["check"], payload["severity"], payload["blocking"], payload["window"]) == ("row_count", "WARN", False, W2)
    assert payload["summary"] == "rows=0"  # no description: the metadata, shortly
    assert payload["details"] == {"rows": 0}


@pytest.mark.slow
def test_a_receiver_error_keeps_the_alert_for_the_next_tick(instance, receiver, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    receiver.status = 500
    run(instance, W1, duplicates=2)

    failed = tick(instance)
    assert len(receiver.requests) == 1
    assert f"webhook {receiver.url} answered HTTP 500" in failed.skip and "retried on the next tick" in failed.skip
    warnings = [m for level, m in failed.logs if level == logging.WARNING]
    assert len(warnings) == 1 and f"webhook {receiver.url} answered HTTP 500" in warnings[0]
    assert_no_secret(failed.said())

    receiver.status = 200
    delivered = tick(instance, failed.cursor)
    assert len(receiver.requests) == 2 and delivered.skip.startswith("sent 1 alert")
    assert receiver.requests[1].json() == receiver.requests[0].json()  # the same alert, now delivered
    tick(instance, delivered.cursor)
    assert len(receiver.requests) == 2


def test_an_unreachable_webhook_is_named_without_its_token(instance, monkeypatch) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SPOTIFY_ASSETS_ALERT_WEBHOOK", f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
    run(instance, W1, duplicates=2)
    result = tick(instance)
    assert f"webhook http://127.0.0.1:{port}: ConnectionRefusedError" in result.skip
    assert_no_secret(result.said())
    assert "hooks/T000" not in result.said()


def test_without_a_destination_alerts_go_to_the_file_with_a_warning(instance, tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SPOTIFY_ASSETS_DATA_DIR", str(data_dir))
    run(instance, W1, duplicates=2)

    first = tick(instance)
    alerts_file = data_dir / "alerts.jsonl"
    [line] = alerts_file.read_text().splitlines()
    payload = json.loads(line)
    assert set(payload) == PAYLOAD_KEYS
    assert (payload["asset"], payload["check"], payload["window"], payload["status"]) == ("songs", "keys_unique", W1, "failed")
    [warning] = [m for level, m in first.logs if level == logging.WARNING]
    assert str(alerts_file) in warning
    assert "SPOTIFY_ASSETS_ALERT_WEBHOOK" in warning and "SLACK_BOT_TOKEN" in warning and "SPOTIFY_ASSETS_SLACK_CHANNEL" in warning

    tick(instance, first.cursor)
    assert len(alerts_file.read_text().splitlines()) == 1


@pytest.mark.slow
def test_slack_gets_a_readable_message_and_the_token_only_in_its_header(instance, slack, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SPOTIFY_ASSETS_SLACK_CHANNEL", "#data-alerts")
    run_id = run(instance, W1, duplicates=2)

    result = tick(instance)

    [posted] = slack.requests
    assert posted.path == "/api/chat.postMessage"
    assert posted.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    message = posted.json()
    assert message["channel"] == "#data-alerts"
    text = message["text"]
    for part in ("songs / keys_unique", "ERROR, blocking", W1, "2 duplicated song_id values", f"{WEBSERVER}/runs/{run_id}"):
        assert part in text
    assert f"<{WEBSERVER}/runs/{run_id}|" in json.dumps(message["blocks"])
    assert_no_secret(posted.body.decode(), result.said())
    assert result.skip.startswith("sent 1 alert")

    tick(instance, result.cursor)
    assert len(slack.requests) == 1


@pytest.mark.slow
def test_with_slack_and_a_webhook_a_failing_one_does_not_repeat_the_other(instance, receiver, slack, clock, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SPOTIFY_ASSETS_SLACK_CHANNEL", "#data-alerts")
    receiver.status = 503
    run(instance, W1, duplicates=2)

    cursor = tick(instance).cursor
    cursor = tick(instance, cursor).cursor  # the webhook is still down
    assert (len(slack.requests), len(receiver.requests)) == (1, 2)
    receiver.status = 200
    clock.advance(61)  # the third attempt is a minute after the second
    cursor = tick(instance, cursor).cursor
    cursor = tick(instance, cursor).cursor
    assert (len(slack.requests), len(receiver.requests)) == (1, 3)


@pytest.mark.slow
def test_a_sensor_without_cursor_announces_what_fails_now_among_the_last_day(instance, receiver, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    run(instance, W1, duplicates=2)  # failed before the look-back: history, not news
    time.sleep(0.05)
    cutoff = time.time()
    run(instance, W2, duplicates=2, rows=0)  # both checks fail for W2...
    run(instance, W2, duplicates=0, rows=0)  # ...keys_unique recovers, row_count still fails
    monkeypatch.setattr(alerts_defs, "time", SimpleNamespace(time=lambda: cutoff + alerts_lib.REPLAY_LOOKBACK_S))

    first = tick(instance)
    assert [(r.json()["check"], r.json()["window"], r.json()["status"]) for r in receiver.requests] == [
        ("row_count", W2, "failed")
    ]
    tick(instance, first.cursor)
    assert len(receiver.requests) == 1
    assert AlertState.from_cursor(first.cursor).replay is False


# --- the state machine, the payload, the destinations ---------------------------------------


def ev(storage_id: int, passed: bool, window: str = W1, check: str = "keys_unique") -> Evaluation:
    return Evaluation(storage_id=storage_id, asset_path=("songs",), check=check, passed=passed, window=window)


def test_a_replay_announces_each_key_latest_failure_once_even_across_ticks() -> None:
    start = AlertState(after=10, replay=True)
    evaluations = [ev(11, False, W1), ev(12, True, W1), ev(13, False, W2), ev(14, False, W2), ev(15, False, check="row_count")]
    plan = plan_alerts(start, evaluations, max_alerts=1)
    assert [(s.evaluation.storage_id, s.status) for s in plan.steps] == [(14, "failed")]
    assert plan.final.replay and plan.final.after == 10  # not done: replay again next tick
    rest = plan_alerts(plan.final, evaluations, max_alerts=1)
    assert [(s.evaluation.storage_id, s.status) for s in rest.steps] == [(15, "failed")]
    assert not rest.final.replay and rest.final.after == 15
    assert plan_alerts(rest.final, evaluations).steps == ()


def test_alerts_beyond_the_per_tick_limit_follow_on_the_next_tick() -> None:
    evaluations = [ev(1, False, W1), ev(2, True, "x"), ev(3, False, W2), ev(4, False, "w3")]
    plan = plan_alerts(AlertState(), evaluations, max_alerts=2)
    assert [s.evaluation.storage_id for s in plan.steps] == [1, 3]
    assert plan.final.after == 3
    rest = plan_alerts(plan.final, evaluations, max_alerts=2)
    assert [s.evaluation.storage_id for s in rest.steps] == [4] and rest.final.after == 4


def test_the_failing_set_is_bounded_and_forgets_the_oldest() -> None:
    plan = plan_alerts(AlertState(), [ev(i, False, f"w{i}") for i in range(1, 6)], max_failing=3)
    assert [key[2] for key in plan.final.failing] == ["w3", "w4", "w5"]
    again = plan_alerts(plan.final, [ev(6, False, "w1"), ev(7, False, "w5")], max_failing=3)
    assert [s.evaluation.storage_id for s in again.steps] == [6]  # w1 was forgotten, w5 was not


def test_the_cursor_round_trips_and_a_bad_one_says_what_to_do() -> None:
    state = AlertState(after=42, failing=(("songs", "keys_unique", W1), ("a/b", "c", None)), replay=True,
                       delivered=alerts_lib.Delivered("42:songs:keys_unique", ("Slack #x",)))
    assert AlertState.from_cursor(state.to_cursor()) == state
    assert AlertState.from_cursor("17") == AlertState(after=17)
    with pytest.raises(ValueError, match="set it to an event log storage id"):
        AlertState.from_cursor("not json")


def test_details_are_plain_values_cut_to_about_a_thousand_characters() -> None:
    assert plain_value(dg.MetadataValue.md("x" * 5000)) == "x" * 999 + "…"
    assert plain_value(dg.MetadataValue.json({"a": [1]})) == '{"a": [1]}'
    assert plain_value(dg.MetadataValue.float(float("nan"))) == "nan"
    assert plain_value(dg.MetadataValue.timestamp(0.0)) == "1970-01-01T00:00:00Z"
    assert plain_value(dg.MetadataValue.table([dg.TableRecord({"song_id": "s1"})])) == '[{"song_id": "s1"}]'
    assert [plain_value(v) for v in (dg.MetadataValue.int(3), dg.MetadataValue.bool(True), 1.5)] == [3, True, 1.5]
    long = Evaluation(1, ("songs",), "c", False, description="line one\n  line two " + "y" * 1000)
    assert alerts_lib.summarize(long).startswith("line one line two y") and len(alerts_lib.summarize(long)) == 300


def test_a_webhook_is_named_by_scheme_and_host_only() -> None:
    url = "https://user:pw@hooks.example.com:8443/services/T0/B0/XSECRET?k=QSECRET"
    assert alerts_lib.redact_url(url) == "https://hooks.example.com:8443"
    destination = alerts_lib.WebhookDestination(url)
    assert "SECRET" not in destination.name + repr(destination)


def test_the_sensor_is_part_of_the_code_location_and_runs_by_default() -> None:
    from spotify_assets.definitions import defs

    sensor = defs().resolve_sensor_def("asset_check_alerts")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert not sensor.targets  # it launches nothing


# --- the acceptance: the real pipeline ------------------------------------------------------


@pytest.mark.slow
def test_a_duplicated_song_in_the_real_pipeline_produces_exactly_one_alert(instance, receiver, monkeypatch) -> None:
    """Corrupting one table (a duplicated key) blocks the views and produces exactly one alert;
    fixing the data sends exactly one resolved notice."""
    import pandas as pd

    from spotify_assets.definitions import defs
    from spotify_assets_tests.support.windows import windows
    from spotify_assets.defs.analytics.views import view_names
    from spotify_assets.lib.tables.normalize import Normalizer

    snapshot_windows = windows()  # as the code location builds them

    use_webhook(monkeypatch, receiver)
    finish = Normalizer.finish

    def duplicating_a_song(self):  # type: ignore[no-untyped-def]
        window = finish(self)
        songs_frame = window.frames["songs"]
        window.frames["songs"] = pd.concat([songs_frame, songs_frame.iloc[[0]]], ignore_index=True)
        return window

    window = snapshot_windows.get_partition_keys()[-1]
    job = defs().resolve_job_def("spotify_pipeline_job")
    monkeypatch.setattr(Normalizer, "finish", duplicating_a_song)
    corrupted = job.execute_in_process(partition_key=window, instance=instance, raise_on_error=False)
    built = {e.asset_key.to_user_string() for e in corrupted.get_asset_materialization_events()}
    assert not set(view_names()) & built  # the views are blocked

    cursor = tick(instance).cursor
    [alert] = [r.json() for r in receiver.requests]
    assert (alert["status"], alert["asset"], alert["check"], alert["window"]) == ("failed", "songs", "unique_key", window)
    assert (alert["severity"], alert["blocking"]) == ("ERROR", True)
    assert alert["run_url"] == f"{WEBSERVER}/runs/{corrupted.run_id}"
    cursor = tick(instance, cursor).cursor
    assert len(receiver.requests) == 1

    monkeypatch.setattr(Normalizer, "finish", finish)
    assert job.execute_in_process(partition_key=window, instance=instance, raise_on_error=False).success
    tick(instance, cursor)
    assert [(r.json()["status"], r.json()["check"]) for r in receiver.requests[1:]] == [("resolved", "unique_key")]


# --- delivery: each destination on its own, bounded retries, recorded give-ups --------------


class FakeDestination:
    def __init__(self, name: str, fails: bool = False, takes_s: float = 0.0, clock: list[float] | None = None) -> None:
        self.name, self.fails, self.takes_s, self.clock = name, fails, takes_s, clock
        self.got: list[str] = []

    def send(self, alert: alerts_lib.Alert) -> None:
        self.got.append(alert.id)
        if self.clock is not None:
            self.clock[0] += self.takes_s
        if self.fails:
            raise alerts_lib.AlertDeliveryError(f"{self.name} answered HTTP 503")


class Quiet:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, m: str) -> None:
        self.lines.append(("info", m))

    def warning(self, m: str) -> None:
        self.lines.append(("warning", m))

    def error(self, m: str) -> None:
        self.lines.append(("error", m))


def an_alert(n: int) -> alerts_lib.Alert:
    return alerts_lib.Alert.from_evaluation(ev(n, False, f"w{n}"), "failed", WEBSERVER)


def test_a_failed_delivery_is_retried_next_tick_then_after_1_2_5_10_20_30_minutes_then_given_up(tmp_path) -> None:
    dead, alive = FakeDestination("webhook dead", fails=True), FakeDestination("Slack #ok")
    record = tmp_path / "alerts.jsonl"
    log = Quiet()
    state, now, tried_at = AlertState(), 1000.0, []
    delivery = alerts_lib.Delivery([dead, alive], state, record_path=record, log=log, now=now)
    delivery.send_new(an_alert(1))
    tried_at.append(now)
    for _ in range(200):  # ticks every 30 s
        state = AlertState(pending=tuple(delivery.pending), gave_up=tuple(delivery.gave_up))
        if not state.pending:
            break
        now += 30
        before = len(dead.got)
        delivery = alerts_lib.Delivery([dead, alive], state, record_path=record, log=log, now=now)
        delivery.retry_due()
        if len(dead.got) > before:
            tried_at.append(now)
    gaps = [round(b - a) for a, b in zip(tried_at, tried_at[1:])]
    assert gaps == [30, 60, 120, 300, 600, 1200, 1800]  # next tick (30 s here), then the backoff
    assert len(dead.got) == alerts_lib.MAX_ATTEMPTS == 8 and alive.got == [an_alert(1).id]
    [gave_up] = state.gave_up
    assert (gave_up.to, gave_up.attempts, gave_up.label) == ("webhook dead", 8, "songs/keys_unique, window w1")
    [line] = record.read_text().splitlines()
    assert json.loads(line)["undelivered_to"] == ["webhook dead"] and json.loads(line)["id"] == an_alert(1).id
    errors = [m for level, m in log.lines if level == "error"]
    assert len(errors) == 1 and "webhook dead" in errors[0] and an_alert(1).id in errors[0] and str(record) in errors[0]


def test_pending_retries_are_bounded_and_the_oldest_is_given_up_with_a_record(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(alerts_lib, "MAX_PENDING", 3)
    dead = FakeDestination("webhook dead", fails=True)
    record = tmp_path / "alerts.jsonl"
    delivery = alerts_lib.Delivery([dead], AlertState(), record_path=record, log=Quiet(), now=0.0)
    for n in range(1, 6):
        delivery.send_new(an_alert(n))
    assert dead.got == [an_alert(1).id]  # one failure per destination per tick
    assert [p.alert.id for p in delivery.pending] == [an_alert(n).id for n in (3, 4, 5)]
    assert [json.loads(line)["id"] for line in record.read_text().splitlines()] == [an_alert(1).id, an_alert(2).id]


def test_the_give_ups_kept_in_the_cursor_are_the_last_twenty(tmp_path) -> None:
    gone = FakeDestination("webhook gone")
    state = AlertState(pending=tuple(alerts_lib.Pending(an_alert(n), "webhook gone", 3, 0.0) for n in range(25)))
    delivery = alerts_lib.Delivery([FakeDestination("Slack #ok")], state, record_path=tmp_path / "a.jsonl", log=Quiet(), now=1.0)
    delivery.retry_due()  # the webhook is no longer configured: its deliveries are given up
    assert gone.got == [] and delivery.pending == []
    assert [g.alert_id for g in delivery.gave_up] == [an_alert(n).id for n in range(5, 25)]
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 25


def test_a_tick_starts_no_send_after_its_budget_and_leaves_the_rest_for_the_next(tmp_path) -> None:
    clock = [0.0]
    slow = FakeDestination("webhook slow", takes_s=8.0, clock=clock)
    delivery = alerts_lib.Delivery(
        [slow], AlertState(), record_path=tmp_path / "a.jsonl", log=Quiet(), now=0.0, budget_s=20.0, monotonic=lambda: clock[0]
    )
    for n in range(1, 6):
        if delivery.out_of_time():
            break
        delivery.send_new(an_alert(n))
    assert len(slow.got) == 3 and clock[0] == 24.0  # started at 0, 8 and 16 s; none after 20 s


def test_a_cursor_from_before_per_destination_retries_still_loads() -> None:
    old = '{"after":41,"failing":[["songs","keys_unique","2026-01-01-00:00"]],"delivered":{"id":"41:songs:keys_unique","to":["Slack #x"]}}'
    state = AlertState.from_cursor(old)
    assert (state.after, state.failing, state.pending, state.gave_up) == (41, (("songs", "keys_unique", W1),), (), ())
    assert state.delivered == alerts_lib.Delivered("41:songs:keys_unique", ("Slack #x",))
    assert AlertState.from_cursor('{"after":3,"failing":[]}') == AlertState(after=3)


def test_a_cursor_with_pending_retries_and_give_ups_round_trips() -> None:
    state = AlertState(
        after=7,
        pending=(alerts_lib.Pending(an_alert(1), "webhook http://h", 2, 1234.5, "webhook http://h answered HTTP 503"),),
        gave_up=(alerts_lib.GaveUp(an_alert(2).id, an_alert(2).label, "Slack #x", 8, "2026-01-01T00:00:00Z", "boom"),),
    )
    assert AlertState.from_cursor(state.to_cursor()) == state


@pytest.mark.slow
def test_a_half_delivered_alert_in_an_old_cursor_is_sent_only_where_it_was_missing(instance, receiver, slack, monkeypatch) -> None:
    use_webhook(monkeypatch, receiver)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SPOTIFY_ASSETS_SLACK_CHANNEL", "#data-alerts")
    start = tick(instance).cursor
    run(instance, W1, duplicates=2)
    [evaluation] = [e for e in read_evaluations(instance, AlertState.from_cursor(start).after)[0] if not e.passed]
    alert_id = f"{evaluation.storage_id}:songs:keys_unique"
    old = json.dumps({"after": AlertState.from_cursor(start).after, "failing": [], "delivered": {"id": alert_id, "to": ["Slack #data-alerts"]}})
    result = tick(instance, old)
    assert (len(slack.requests), len(receiver.requests)) == (0, 1)
    assert receiver.requests[0].json()["id"] == alert_id
    assert "delivered" not in json.loads(result.cursor)
