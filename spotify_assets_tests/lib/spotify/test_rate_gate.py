"""The rate gate every worker of a client shares (lib/spotify/rate_gate.py), on a fake clock."""

from __future__ import annotations

import threading
import time

import pytest

from spotify_assets.lib.spotify.rate_gate import GateClosed, RateGate


class Clock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def gate(limit: int = 4) -> tuple[RateGate, Clock]:
    clock = Clock()
    return RateGate(limit, clock=clock, sleep=clock.sleep), clock


def test_a_429_halves_the_requests_in_flight_once_per_burst() -> None:
    g, clock = gate(8)
    burst = [g.enter() for _ in range(4)]
    clock.now += 0.1
    g.leave(burst[0], throttled=True)
    assert g.counts.limit == 4
    for ticket in burst[1:]:  # in flight when the limit was halved: the same burst
        g.leave(ticket, throttled=True)
    assert g.counts.limit == 4 and g.counts.rate_limited == 4
    clock.now += 0.1
    g.leave(g.enter(), throttled=True)  # sent after the decrease: news
    assert g.counts.limit == 2 and g.counts.lowest_limit == 2


def test_the_limit_grows_by_one_after_a_limits_worth_of_answers_and_slowly_near_the_last_429() -> None:
    g, clock = gate(8)
    burst = [g.enter() for _ in range(4)]
    g.leave(burst[0], throttled=True)  # 4 in flight when the 429 came
    for ticket in burst[1:]:
        g.leave(ticket, throttled=False)
    assert g.counts.limit == 4  # 8 halved; the three answers of the same burst do not count yet
    clock.now += 1
    g.leave(g.enter(), throttled=True)  # alone in flight: the 429 came at 1
    assert g.counts.limit == 2
    limits = []
    for _ in range(60):
        g.leave(g.enter(), throttled=False)
        limits.append(g.counts.limit)
    # the last 429 came with 1 in flight: every step is past that level, 8x slower (limit x 8)
    assert limits.index(3) == 15 and limits.index(4) == 15 + 24
    assert g.counts.lowest_limit == 2


def test_below_the_level_of_the_last_429_the_limit_grows_by_one_per_limits_worth() -> None:
    g, clock = gate(16)
    burst = [g.enter() for _ in range(16)]
    g.leave(burst[0], throttled=True)  # 16 in flight: halved to 8, the last 429 at 16
    for ticket in burst[1:]:
        g.leave(ticket, throttled=False)
    limits = []
    for _ in range(200):
        g.leave(g.enter(), throttled=False)
        limits.append(g.counts.limit)
    # the burst's 15 answers already took it to 9 (8 answers) and most of the way to 10
    assert [limits.index(n) for n in (9, 10, 11)] == [0, 1, 11]
    # one step per limit's worth of answers up to 15; the step to 16, where the 429 came, takes 8x
    assert limits.index(15) - limits.index(14) == 14 and limits.index(16) - limits.index(15) == 15 * 8
    assert max(limits) == 16


def test_a_pause_holds_every_worker_and_overlapping_pauses_count_once() -> None:
    g, clock = gate()
    g.pause(5)
    clock.now += 1
    g.pause(3)  # ends before the first: covered
    clock.now += 1
    g.pause(10)  # ends at 112: extends it
    assert g.counts.pauses == 2 and g.counts.paused_s == pytest.approx(12.0)
    g.enter()
    assert clock.now == pytest.approx(112.0)  # the worker waited until the last pause ended
    g.enter()  # nothing left to wait
    assert clock.slept == [pytest.approx(10.0)]


def test_with_a_clock_that_does_not_move_each_worker_waits_each_pause_once() -> None:
    """Tests record waits instead of sleeping: the gate must not spin on a clock that stands."""
    waits: list[float] = []
    g = RateGate(2, clock=lambda: 0.0, sleep=waits.append)
    g.pause(3)
    g.leave(g.enter(), throttled=False)
    g.leave(g.enter(), throttled=False)
    other = threading.Thread(target=lambda: g.leave(g.enter(), throttled=False))
    other.start()
    other.join(5)
    assert not other.is_alive() and waits == [3.0, 3.0]
    g.pause(4)
    g.enter()
    assert waits == [3.0, 3.0, 4.0]


def test_a_closed_gate_refuses_at_once_naming_the_429_until_it_lifts() -> None:
    g, clock = gate()
    cause = RuntimeError("HTTP 429 from GET /v1/playlists/x/items: wait 7200 s")
    g.close(7200, cause)
    clock.now += 200
    with pytest.raises(GateClosed) as refused:
        g.enter()
    assert refused.value.cause is cause and refused.value.remaining_s == pytest.approx(7000)
    assert "7000 s" in str(refused.value) and "/v1/playlists/x/items" in str(refused.value)
    assert clock.slept == []  # refused, not waited
    clock.now += 7000
    g.enter()


def test_threads_never_exceed_the_limit_in_flight() -> None:
    g = RateGate(2)
    lock = threading.Lock()
    in_flight = peak = 0

    def work() -> None:
        nonlocal in_flight, peak
        for _ in range(20):
            ticket = g.enter()
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.001)
            with lock:
                in_flight -= 1
            g.leave(ticket, throttled=False)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert peak == 2
