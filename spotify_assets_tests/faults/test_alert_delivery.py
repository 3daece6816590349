"""Case 7, last item: one broken alert destination must not hold back every later alert.

Before, the sensor stopped at the first alert a destination refused and kept its cursor there:
with the webhook down, Slack got the first alert and then nothing more, ever, while every tick
posted the same alert to the dead webhook again. Now each destination fails on its own: the
failed deliveries wait in the cursor and are retried with a backoff (next tick, then 1, 2, 5,
10, 20, 30 minutes), at most one failure per destination per tick, and after 8 attempts they
are given up, logged, kept in the cursor's `gave_up` and appended to alerts.jsonl with
`undelivered_to`. Here a webhook that always answers 503 (and one that answers a byte a
second) sits next to a working Slack, on a real Dagster instance, with the sensor's clock
moved by hand; alerts are counted at each receiver: none lost, none doubled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

import spotify_assets.lib.alerts.delivery as alerts_lib
from spotify_assets.lib.alerts.delivery import AlertState
from spotify_assets_tests.lib.alerts.test_delivery import (  # noqa: F401  (fixtures used by name)
    W1,
    W2,
    Receiver,
    alert_env,
    clock,
    receiver,
    run,
    slack,
    tick,
)

pytestmark = pytest.mark.slow

SLACK_TOKEN = "xoxb-T0KEN"


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTIFY_ASSETS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def use_both(monkeypatch: pytest.MonkeyPatch, webhook_url: str) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_ALERT_WEBHOOK", webhook_url + "/hook/SECRETPATH")
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SPOTIFY_ASSETS_SLACK_CHANNEL", "#data-alerts")


def four_alerts(instance: dg.DagsterInstance) -> str:
    """Four alerts to send; the sensor's cursor from before them (not a first-tick replay)."""
    cursor = tick(instance).cursor
    run(instance, W1, duplicates=2)  # failed: keys_unique W1
    run(instance, W2, duplicates=1, rows=0)  # failed: keys_unique W2, row_count W2
    run(instance, W1, duplicates=0)  # resolved: keys_unique W1
    return cursor


def ids(received) -> list[str]:
    return [json.loads(r.body)["id"] for r in received]


def slack_ids(slack_receiver: Receiver) -> list[str]:
    # the Slack message carries the alert through its text; the run and check identify it
    return [json.loads(r.body)["text"] for r in slack_receiver.requests]


def test_a_broken_webhook_holds_back_nothing_and_gives_up_on_its_alerts_with_a_record(
    instance, receiver, slack, clock, data_dir, monkeypatch
) -> None:
    use_both(monkeypatch, receiver.url)
    receiver.status = 503  # destination A: broken for good
    cursor = four_alerts(instance)
    started = time.monotonic()

    first = tick(instance, cursor)
    # B (Slack) gets every alert at once; A was tried once (one failure per destination per tick)
    assert len(slack.requests) == 4 and len(set(slack_ids(slack))) == 4
    assert len(receiver.requests) == 1
    state = AlertState.from_cursor(first.cursor)
    assert len(state.pending) == 4 and {p.to for p in state.pending} == {f"webhook {receiver.url}"}
    assert "retried on the next tick" in first.skip and "4 deliveries waiting for a retry" in first.skip

    # The retries, with the clock moved past every backoff: never more than one request to A
    # per tick, each alert tried exactly MAX_ATTEMPTS times, then given up
    cursor, ticks = first.cursor, 1
    while AlertState.from_cursor(cursor).pending:
        before = len(receiver.requests)
        clock.advance(31 * 60)
        cursor = tick(instance, cursor).cursor
        ticks += 1
        assert len(receiver.requests) - before <= 1
        assert ticks < 100, "the retries never end"
    attempts = Counter(ids(receiver.requests))
    assert sorted(attempts.values()) == [alerts_lib.MAX_ATTEMPTS] * 4 == [8] * 4

    state = AlertState.from_cursor(cursor)
    assert sorted(g.alert_id for g in state.gave_up) == sorted(attempts)
    assert all(g.attempts == 8 and "answered HTTP 503" in g.error for g in state.gave_up)
    # nothing lost: every alert A never got is in the local record, once, with undelivered_to
    records = [json.loads(line) for line in (data_dir / "alerts.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(attempts)
    assert all(r["undelivered_to"] == [f"webhook {receiver.url}"] for r in records)
    assert all("SECRETPATH" not in json.dumps(r) for r in records)
    # nothing doubled: B still has each alert once
    assert len(slack.requests) == 4 and len(set(slack_ids(slack))) == 4

    # A comes back: the next alert reaches both once, and nothing old is re-sent
    receiver.status = 200
    run(instance, W2, duplicates=0)  # resolved: keys_unique W2 and row_count W2
    cursor = tick(instance, cursor).cursor
    for _ in range(3):
        clock.advance(31 * 60)
        cursor = tick(instance, cursor).cursor
    assert len(slack.requests) == 6 and len(set(slack_ids(slack))) == 6
    assert len(receiver.requests) == 4 * 8 + 2
    assert [json.loads(r.body)["status"] for r in receiver.requests[-2:]] == ["resolved", "resolved"]
    assert len((data_dir / "alerts.jsonl").read_text().splitlines()) == 4
    assert time.monotonic() - started < 120  # ~35 ticks


def test_a_webhook_that_fails_twice_then_recovers_gets_each_alert_once(instance, clock, data_dir, monkeypatch) -> None:
    flaky = Receiver()
    answers = iter([500, 502])  # then 200 for good
    handler_class = flaky.server.RequestHandlerClass
    original = handler_class.do_POST

    def do_post(self) -> None:  # type: ignore[no-untyped-def]
        flaky.status = next(answers, 200)
        original(self)

    handler_class.do_POST = do_post
    try:
        monkeypatch.setenv("SPOTIFY_ASSETS_ALERT_WEBHOOK", flaky.url + "/hook")
        cursor = four_alerts(instance)
        cursor = tick(instance, cursor).cursor  # alert 1: 500; alerts 2-4 wait (A failed this tick)
        cursor = tick(instance, cursor).cursor  # alert 1, attempt 2: 502
        clock.advance(60)
        for _ in range(4):
            cursor = tick(instance, cursor).cursor
        delivered = [json.loads(r.body)["id"] for r in flaky.requests]
        assert len(flaky.requests) == 6  # 2 failures + 4 deliveries
        assert len(set(delivered)) == 4 and Counter(delivered).most_common(1)[0][1] == 3  # alert 1: three tries
        state = AlertState.from_cursor(cursor)
        assert state.pending == () and state.gave_up == ()
        assert not (data_dir / "alerts.jsonl").exists()
    finally:
        flaky.close()


class Trickle:
    """A webhook that accepts, then answers one byte a second: it never finishes in time."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 10:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(1)
                except OSError:
                    pass  # the client hung up: what it should do

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_that_trickles_its_answer_is_cut_off_and_the_tick_stays_bounded(
    instance, slack, clock, data_dir, monkeypatch
) -> None:
    trickle = Trickle()
    try:
        use_both(monkeypatch, trickle.url)
        cursor = four_alerts(instance)
        started = time.monotonic()
        first = tick(instance, cursor)
        took = time.monotonic() - started
        assert took < 30, f"a tick took {took:.0f} s"  # before: held for as long as the server trickles
        assert trickle.hits == 1  # tried once this tick, not once per alert
        assert len(slack.requests) == 4  # B is not held back
        assert f"no complete answer within {alerts_lib.REQUEST_TIMEOUT_S:g} s" in first.skip
        assert len(AlertState.from_cursor(first.cursor).pending) == 4
    finally:
        trickle.close()
