"""One rate gate for every worker of a client: Spotify limits an app, not a connection.

Spotify counts an app's requests over a rolling 30 seconds and answers 429 with `Retry-After`
when it has had enough; a client that goes on sending meanwhile earns waits of hours. So:

- a 429 on any request pauses every worker until its `Retry-After` has passed (the caller has
  already refused waits longer than SPOTIFY_MAX_RETRY_AFTER_SECONDS). A 429 asking for longer
  than that closes the gate until then: the requests after it fail at once, unsent, naming the
  429 that closed it, instead of each earning a 429 of its own;
- the number of requests in flight adapts, additive increase and multiplicative decrease (as
  TCP does): halved on a 429 (once per burst: the requests already in flight when it was halved
  do not halve it again), grown by one after a limit's worth of requests without a 429. Near
  the level where the last 429 came (as many in flight as then, less one) it grows PROBE times
  more slowly, so a long run settles just under the limit instead of bouncing off it.

Plain threads, no Dagster. `clock` and `sleep` are injectable: a test records the waits instead
of sleeping through them, and each worker then waits once for each pause it has not seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class GateClosed(Exception):
    """A 429 asked for a wait longer than allowed: nothing is sent until it has passed."""

    def __init__(self, remaining_s: float, cause: BaseException):
        self.remaining_s = remaining_s
        self.cause = cause
        super().__init__(f"closed for {remaining_s:.0f} s more: {cause}")


@dataclass(frozen=True)
class Ticket:
    """A request let through: when it started, for the decrease-once-per-burst rule."""

    started: float


@dataclass(frozen=True)
class GateCounts:
    rate_limited: int  # 429 answers seen
    pauses: int  # pauses that held every worker
    paused_s: float  # wall time the gate was paused (overlapping pauses counted once)
    limit: int  # requests allowed in flight now
    lowest_limit: int  # the lowest it went


PROBE = 8  # how much more slowly the limit grows past the level of the last 429


class RateGate:
    def __init__(
        self,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.max_in_flight = max(1, max_in_flight)
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._limit = self.max_in_flight
        self._lowest = self.max_in_flight
        self._in_flight = 0
        self._since_change = 0  # requests answered without a 429 since the limit last changed
        self._decreased_at = float("-inf")
        self._ceiling = self.max_in_flight + 1  # requests in flight when the last 429 came
        self._paused_until = float("-inf")
        self._pause_generation = 0
        self._paused_s = 0.0
        self._closed: tuple[float, BaseException] | None = None  # until, the 429 that closed it
        self._rate_limited = 0
        self._seen = threading.local()  # the last pause generation this thread has waited out

    # --- the workers' side ------------------------------------------------------------------

    def enter(self) -> Ticket:
        """Wait for any pause this thread has not waited out and for a free slot; raises
        GateClosed while a 429 beyond the bound holds the gate shut."""
        while True:
            with self._cond:
                now = self._clock()
                if self._closed is not None and now < self._closed[0]:
                    raise GateClosed(self._closed[0] - now, self._closed[1])
                generation = self._pause_generation
                wait = self._paused_until - now
                if wait <= 0 or getattr(self._seen, "generation", 0) >= generation:
                    while self._in_flight >= self._limit:
                        self._cond.wait()
                    self._in_flight += 1
                    return Ticket(self._clock())
            self._sleep(wait)
            self._seen.generation = generation

    def leave(self, ticket: Ticket, *, throttled: bool) -> None:
        """The request has its answer; `throttled`: it was a 429."""
        with self._cond:
            self._in_flight -= 1
            if throttled:
                self._rate_limited += 1
                if ticket.started >= self._decreased_at:  # the first 429 of a burst
                    self._ceiling = self._in_flight + 1  # with this one
                    self._limit = max(1, self._limit // 2)
                    self._lowest = min(self._lowest, self._limit)
                    self._decreased_at = self._clock()
                    self._since_change = 0
            else:
                self._since_change += 1
                needed = self._limit if self._limit + 1 < self._ceiling else self._limit * PROBE
                if self._since_change >= needed and self._limit < self.max_in_flight:
                    self._limit += 1
                    self._since_change = 0
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold every worker for `seconds` from now (a 429's Retry-After). The calling thread
        is held too: its next `enter` waits the pause out."""
        with self._cond:
            now = self._clock()
            until = now + max(0.0, seconds)
            if until <= self._paused_until:
                return  # a pause already covers it
            self._paused_s += until - max(now, self._paused_until)
            self._paused_until = until
            self._pause_generation += 1

    def close(self, seconds: float, cause: BaseException) -> None:
        """Refuse every request for `seconds` from now: a 429 asked for more than we may wait."""
        with self._cond:
            until = self._clock() + max(0.0, seconds)
            if self._closed is None or until > self._closed[0]:
                self._closed = (until, cause)

    @property
    def counts(self) -> GateCounts:
        with self._cond:
            return GateCounts(self._rate_limited, self._pause_generation, self._paused_s, self._limit, self._lowest)
