"""Alerts for failed asset checks: what an alert says, where it goes, and when it is sent.

No Dagster definitions here: `defs/alerts/sensor.py` holds the sensor that feeds this module.

* `Evaluation` is one asset check evaluation as read from the event log, `Alert` what a person
  is told about it (`Alert.payload()` is the documented JSON).
* `plan_alerts` is the pure state machine that decides which evaluations produce which alerts,
  given the state kept in the sensor cursor (`AlertState`). It is what makes the same
  evaluation never alert twice, and a check that keeps failing on re-runs of the same window
  alert once.
* Destinations deliver an alert: a generic webhook, Slack (slack_sdk), or, with nothing
  configured, a JSON-lines file in the data directory.
* `Delivery` sends one tick's alerts: each destination fails on its own (a failed delivery is
  kept in the cursor as `Pending` and retried with a backoff; after `MAX_ATTEMPTS` it is given
  up, logged and recorded in the alerts file), so a dead destination holds back nothing else.

Secrets (the Slack token, the webhook URL, which usually embeds a token) are read from the
environment when alerts are sent, and never put in a payload, a log line or an error message:
a webhook is named by its scheme and host only.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit


from spotify_assets.lib.settings import Settings
from spotify_assets.lib.timestamps import iso_z

SOURCE = "spotify-assets"
SLACK_API_URL = "https://slack.com/api/"  # tests point this at a fake Slack on loopback
REQUEST_TIMEOUT_S = 10.0  # a whole request: connect, send, the answer (a deadline, not per read)
DETAIL_MAX_CHARS = 1000
SUMMARY_MAX_CHARS = 300

# The state kept in the sensor cursor, and how much work one tick does.
MAX_FAILING_KEYS = 1000  # beyond this the oldest failing keys are forgotten (cursor size)
MAX_ALERTS_PER_TICK = 25  # the rest are sent on the next ticks, in order
MAX_EVALUATIONS_PER_TICK = 5000
REPLAY_LOOKBACK_S = 24 * 3600  # a sensor without a cursor looks at the last day

# Failed deliveries: retried on the next tick, then after 1, 2, 5, 10, 20 and 30 minutes; the
# 8th failure gives up (about an hour and ten minutes after the first).
RETRY_DELAYS_S = (0, 60, 120, 300, 600, 1200, 1800)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
MAX_PENDING = 50  # deliveries waiting for a retry; beyond it the oldest is given up (cursor size)
MAX_GAVE_UP_KEPT = 20  # the last give-ups, kept in the cursor for people to see
TICK_SEND_BUDGET_S = 20.0  # no send starts after this long in one tick

Status = Literal["failed", "resolved"]
CheckKey = tuple[str, str, str | None]  # (asset, check, window)


# --- what happened -------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One asset check evaluation, as the event log recorded it (metadata as plain values)."""

    storage_id: int
    asset_path: tuple[str, ...]
    check: str
    passed: bool
    severity: Literal["ERROR", "WARN"] = "ERROR"
    blocking: bool = False
    window: str | None = None  # the partition evaluated, else the run's partition
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    timestamp: float = 0.0  # seconds since the epoch

    @property
    def asset(self) -> str:
        return "/".join(self.asset_path)

    @property
    def key(self) -> CheckKey:
        return (self.asset, self.check, self.window)


def truncate(text: str, limit: int = DETAIL_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso_seconds(timestamp: float) -> str:
    return iso_z(datetime.fromtimestamp(timestamp, tz=timezone.utc), "seconds")


# --- what a person is told ------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """A failed check evaluation, or a check passing again after one."""

    id: str
    status: Status
    asset: str
    asset_path: tuple[str, ...]
    check: str
    severity: str
    blocking: bool
    window: str | None
    summary: str
    details: Mapping[str, Any]
    run_id: str | None
    evaluated_at: str
    webserver_url: str

    @classmethod
    def from_evaluation(cls, evaluation: Evaluation, status: Status, webserver_url: str) -> Alert:
        return cls(
            # the event log storage id names the evaluation; the check key makes it readable
            id=f"{evaluation.storage_id}:{evaluation.asset}:{evaluation.check}",
            status=status,
            asset=evaluation.asset,
            asset_path=evaluation.asset_path,
            check=evaluation.check,
            severity=evaluation.severity,
            blocking=evaluation.blocking,
            window=evaluation.window,
            summary=summarize(evaluation),
            details=dict(evaluation.metadata),
            run_id=evaluation.run_id,
            evaluated_at=iso_seconds(evaluation.timestamp),
            webserver_url=webserver_url.rstrip("/"),
        )

    def to_doc(self) -> dict[str, Any]:
        """Every field, as JSON (a pending retry keeps its alert in the cursor)."""
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["asset_path"], doc["details"] = list(self.asset_path), dict(self.details)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Alert:
        values = {name: doc[name] for name in cls.__dataclass_fields__}
        values["asset_path"], values["details"] = tuple(values["asset_path"]), dict(values["details"])
        return cls(**values)

    @property
    def run_url(self) -> str | None:
        return f"{self.webserver_url}/runs/{self.run_id}" if self.run_id else None

    @property
    def asset_url(self) -> str:
        return f"{self.webserver_url}/assets/{'/'.join(self.asset_path)}?view=checks"

    @property
    def heading(self) -> str:
        return "Check failed" if self.status == "failed" else "Check passed again"

    @property
    def severity_text(self) -> str:
        """`ERROR, blocking`, `WARN`."""
        return self.severity + (", blocking" if self.blocking else "")

    @property
    def window_text(self) -> str:
        return self.window or "none (not partitioned)"

    @property
    def label(self) -> str:
        """`songs/unique_key, window 2026-01-01-00:00`: for log lines."""
        return f"{self.asset}/{self.check}" + (f", window {self.window}" if self.window else "")

    def payload(self) -> dict[str, Any]:
        """The documented JSON body (docs/quality-and-alerts.md, "The payload")."""
        return {
            "id": self.id,
            "status": self.status,
            "asset": self.asset,
            "check": self.check,
            "severity": self.severity,
            "blocking": self.blocking,
            "window": self.window,
            "summary": self.summary,
            "details": dict(self.details),
            "run_id": self.run_id,
            "run_url": self.run_url,
            "asset_url": self.asset_url,
            "evaluated_at": self.evaluated_at,
            "source": SOURCE,
        }

    def text(self) -> str:
        """A plain-text rendering: the text of the Slack message (what notifications show)."""
        lines = [
            f"{self.heading}: {self.asset} / {self.check} [{self.severity_text}]",
            f"Window: {self.window_text}",
            f"Summary: {self.summary}",
        ]
        if self.run_url:
            lines.append(f"Run: {self.run_url}")
        lines.append(f"Asset checks: {self.asset_url}")
        return "\n".join(lines)


def summarize(evaluation: Evaluation) -> str:
    """One line: the evaluation's description, else a short rendering of its metadata."""
    text = " ".join((evaluation.description or "").split())
    if not text:
        parts = []
        for name, value in list(evaluation.metadata.items())[:4]:
            shown = json.dumps(value) if not isinstance(value, str) else value
            parts.append(f"{name}={truncate(' '.join(shown.split()), 60)}")
        text = ", ".join(parts)
    if not text:
        text = f"{evaluation.check} {'passed' if evaluation.passed else 'failed'}"
    return truncate(text, SUMMARY_MAX_CHARS)


# --- when: the state machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """An alert delivered to some of the destinations before another one failed."""

    alert_id: str
    to: tuple[str, ...]


@dataclass(frozen=True)
class Pending:
    """A delivery of `alert` to the destination named `to` that failed `attempts` times (0: not
    tried yet, its destination had already failed in that tick); tried again from `next_at`
    (epoch seconds)."""

    alert: Alert
    to: str
    attempts: int
    next_at: float
    error: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {"alert": self.alert.to_doc(), "to": self.to, "attempts": self.attempts, "next_at": self.next_at, "error": self.error}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Pending:
        return cls(Alert.from_doc(doc["alert"]), str(doc["to"]), int(doc["attempts"]), float(doc["next_at"]), str(doc.get("error", "")))


@dataclass(frozen=True)
class GaveUp:
    """An alert never delivered to one destination (it is in the alerts file instead)."""

    alert_id: str
    label: str
    to: str
    attempts: int
    at: str  # ISO time of the give-up
    error: str

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.alert_id, "label": self.label, "to": self.to, "attempts": self.attempts, "at": self.at, "error": self.error}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> GaveUp:
        return cls(str(doc["id"]), str(doc.get("label", "")), str(doc["to"]), int(doc["attempts"]), str(doc["at"]), str(doc.get("error", "")))


@dataclass(frozen=True)
class AlertState:
    """What the sensor cursor remembers between ticks and across restarts.

    `after`: the event log storage id of the last evaluation handled. `failing`: the (asset,
    check, window) keys whose failure was announced and that have not passed since, oldest
    first. `replay`: the first ticks of a sensor without a cursor, which announce what is
    failing now among the evaluations after `after` (see `plan_alerts`). `pending`: failed
    deliveries waiting for a retry, oldest first; `gave_up`: the last deliveries given up.
    `delivered` is read from cursors written before per-destination retries: an alert that
    reached some destinations but not all, so its first send skips those.
    """

    after: int = -1
    failing: tuple[CheckKey, ...] = ()
    replay: bool = False
    delivered: Delivered | None = None
    pending: tuple[Pending, ...] = ()
    gave_up: tuple[GaveUp, ...] = ()

    def to_cursor(self) -> str:
        doc: dict[str, Any] = {"after": self.after, "failing": [list(key) for key in self.failing]}
        if self.replay:
            doc["replay"] = True
        if self.delivered:
            doc["delivered"] = {"id": self.delivered.alert_id, "to": list(self.delivered.to)}
        if self.pending:
            doc["pending"] = [p.to_doc() for p in self.pending]
        if self.gave_up:
            doc["gave_up"] = [g.to_doc() for g in self.gave_up]
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_cursor(cls, cursor: str) -> AlertState:
        """Read a cursor; a bare storage id (set by hand in the UI) starts after that event."""
        text = cursor.strip()
        try:
            doc = json.loads(text)
            if isinstance(doc, int) and not isinstance(doc, bool):
                return cls(after=max(doc, -1))
            if not isinstance(doc, dict) or not isinstance(doc.get("after"), int):
                raise ValueError("no 'after' storage id")
            failing = tuple((str(a), str(c), None if w is None else str(w)) for a, c, w in doc.get("failing", []))
            delivered = doc.get("delivered")
            return cls(
                after=max(doc["after"], -1),
                failing=failing,
                replay=bool(doc.get("replay", False)),
                delivered=Delivered(str(delivered["id"]), tuple(delivered["to"])) if delivered else None,
                pending=tuple(Pending.from_doc(p) for p in doc.get("pending", [])),
                gave_up=tuple(GaveUp.from_doc(g) for g in doc.get("gave_up", [])),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ValueError(
                f"the asset_check_alerts cursor is not one this sensor wrote ({err}): clear it, or set it "
                "to an event log storage id to start after that event"
            ) from None


@dataclass(frozen=True)
class Step:
    """Send this alert; once it is delivered, the cursor becomes `state_after`."""

    evaluation: Evaluation
    status: Status
    state_after: AlertState


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    final: AlertState  # the cursor once every step was delivered


def plan_alerts(
    state: AlertState,
    evaluations: Sequence[Evaluation],
    scanned_to: int | None = None,
    *,
    max_alerts: int = MAX_ALERTS_PER_TICK,
    max_failing: int = MAX_FAILING_KEYS,
) -> Plan:
    """Which evaluations (after `state.after`, in storage id order) produce which alerts.

    A failed evaluation alerts when its (asset, check, window) is not already failing; a passed
    evaluation of a failing key sends one "resolved" notice and clears it. So an evaluation
    alerts at most once, a check failing again on a re-run of the same window stays quiet, and
    a failure announced before a restart is still known after it (the failing set is in the
    cursor). `scanned_to`: the last storage id read, when it is past the last evaluation (the
    cursor moves there when nothing is left to send).

    In replay (a sensor without a cursor, over the last day) only each key's latest evaluation
    counts: what fails now is announced once; what failed and recovered is not news.
    """
    ordered = sorted((e for e in evaluations if e.storage_id > state.after), key=lambda e: e.storage_id)
    end = max([state.after, scanned_to or -1] + [e.storage_id for e in ordered])
    failing: OrderedDict[CheckKey, None] = OrderedDict((key, None) for key in state.failing)
    steps: list[Step] = []

    def decide(evaluation: Evaluation) -> Status | None:
        key = evaluation.key
        if not evaluation.passed:
            if key in failing:
                failing.move_to_end(key)  # still failing: keep it among the newest
                return None
            failing[key] = None
            while len(failing) > max_failing:
                failing.popitem(last=False)
            return "failed"
        if key in failing:
            del failing[key]
            return "resolved"
        return None

    candidates = ordered
    if state.replay:
        # only each key's latest evaluation counts, and `after` stays put until the replay is
        # done: one cut short by max_alerts runs again next tick, skipping what was sent
        latest = {evaluation.key: evaluation for evaluation in ordered}
        candidates = sorted(latest.values(), key=lambda e: e.storage_id)
    handled = state.after
    for evaluation in candidates:
        if len(steps) == max_alerts and _would_alert(evaluation, failing):
            # more next tick, starting with this evaluation
            return Plan(tuple(steps), AlertState(handled, tuple(failing), replay=state.replay))
        status = decide(evaluation)
        if not state.replay:
            handled = evaluation.storage_id
        if status:
            steps.append(Step(evaluation, status, AlertState(handled, tuple(failing), replay=state.replay)))
    return Plan(tuple(steps), AlertState(end, tuple(failing)))


def _would_alert(evaluation: Evaluation, failing: Mapping[CheckKey, None]) -> bool:
    return (evaluation.key in failing) == evaluation.passed


# --- where ----------------------------------------------------------------------------------


class AlertDeliveryError(Exception):
    """A destination did not take an alert. The message is safe to log: no secret in it."""


class Destination(Protocol):
    @property
    def name(self) -> str:
        """How logs name the destination (no secret in it)."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver the alert, or raise AlertDeliveryError."""
        ...


def redact_url(url: str) -> str:
    """`scheme://host[:port]`: a webhook URL often carries its token in the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced (longest first, so a URL goes before its path)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return truncate(" ".join(text.split()), 300)


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    return [url, path_query, parts.path if parts.path not in ("", "/") else "", parts.query, userinfo]


@dataclass(frozen=True)
class WebhookDestination:
    """POSTs the payload as JSON. Any answer but 2xx is an error (redirects are not followed).

    The whole request (connect, send, the answer) has a deadline of `timeout_s`: a receiver
    that trickles its answer a byte at a time is cut off, not waited for.
    """

    url: str = field(repr=False)
    timeout_s: float = field(default=REQUEST_TIMEOUT_S, compare=False)

    @property
    def name(self) -> str:
        return f"webhook {redact_url(self.url)}"

    def __repr__(self) -> str:
        return f"WebhookDestination({redact_url(self.url)!r})"

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.payload()).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"{SOURCE}-alerts"}
        try:
            status = post_with_deadline(self.url, body, headers, self.timeout_s)
        except TimeoutError:
            raise AlertDeliveryError(f"{self.name}: no complete answer within {self.timeout_s:g} s") from None
        except (OSError, http.client.HTTPException, ValueError) as err:
            # messages may name the URL's path (and so its token)
            raise AlertDeliveryError(f"{self.name}: {type(err).__name__}: {_scrub(str(err), _url_secrets(self.url))}") from None
        if not 200 <= status < 300:
            raise AlertDeliveryError(f"{self.name} answered HTTP {status}")


def post_with_deadline(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """POST `body` and return the HTTP status, within `timeout_s` in all (TimeoutError after).

    A socket timeout bounds each read only; a watchdog shuts the socket down at the deadline,
    so a receiver that answers one byte at a time cannot hold the sensor.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    headers = dict(headers)
    if parts.username is not None:  # user:password@host, as requests sends it
        credentials = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    watchdog = threading.Timer(timeout_s, cut_off)
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    try:
        connection.connect()
        if expired.is_set():  # the deadline passed while connecting: the watchdog found no socket
            raise TimeoutError
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        response = connection.getresponse()
        response.read(65536)  # the answer's start: enough to end the exchange, bounded
        return response.status
    except (OSError, http.client.HTTPException):
        if expired.is_set() or time.monotonic() - started >= timeout_s:
            raise TimeoutError from None
        raise
    finally:
        watchdog.cancel()
        connection.close()


@dataclass(frozen=True)
class SlackDestination:
    """Posts to a channel with slack_sdk's Web API client; the token (SLACK_BOT_TOKEN) travels
    only in the Authorization header, and is neither shown nor compared."""

    channel: str
    token: str = field(repr=False, compare=False)
    base_url: str | None = None  # None: SLACK_API_URL

    @property
    def name(self) -> str:
        return f"Slack {self.channel}"

    def send(self, alert: Alert) -> None:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        token = self.token.strip()
        if not token:
            raise AlertDeliveryError(f"{self.name}: SLACK_BOT_TOKEN is not set")
        # no retry handlers: the sensor retries, with a backoff; one try per tick here
        client = WebClient(token=token, base_url=self.base_url or SLACK_API_URL, timeout=int(REQUEST_TIMEOUT_S), retry_handlers=[])
        try:
            client.chat_postMessage(
                channel=self.channel, text=alert.text(), blocks=slack_blocks(alert), unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as err:
            problem = err.response.get("error") if err.response is not None else None
            raise AlertDeliveryError(
                f"{self.name}: Slack answered {problem or f'HTTP {err.response.status_code}'}"
            ) from None
        except Exception as err:  # network errors: urllib's, with the API URL but no token
            raise AlertDeliveryError(f"{self.name}: {type(err).__name__}: {_scrub(str(err), [token])}") from None


def slack_blocks(alert: Alert) -> list[dict[str, Any]]:
    """A readable Slack message: what, where, which window, why, and links to the run."""
    fields = [
        f"*{alert.heading}:* `{_slack_escape(alert.asset)}` / `{_slack_escape(alert.check)}`",
        f"*Severity:* {alert.severity_text}",
        f"*Window:* {_slack_escape(alert.window_text)}",
        f"*Summary:* {_slack_escape(alert.summary)}",
    ]
    links = ([f"<{alert.run_url}|Run {alert.run_id[:8]}>"] if alert.run_url and alert.run_id else []) + [
        f"<{alert.asset_url}|Asset checks>"
    ]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(fields)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(links)}]},
    ]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class FileDestination:
    """Appends the payload as one JSON line (the fallback when nothing is configured)."""

    path: Path

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def send(self, alert: Alert) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(alert.payload(), ensure_ascii=False) + "\n")
        except OSError as err:
            raise AlertDeliveryError(f"{self.name}: {err}") from None


def destinations_from_settings(settings: Settings, webhook_url: str | None, slack_token: str | None) -> list[Destination]:
    """The configured destinations: the webhook and/or Slack; with neither, the alerts file.
    Their secrets (the webhook URL, SLACK_BOT_TOKEN) are passed in at send time, never stored
    in the settings, the cursor or the alerts file."""
    destinations: list[Destination] = []
    url = (webhook_url or "").strip()
    if settings.alerts.webhook and url:
        destinations.append(WebhookDestination(url))
    if settings.alerts.slack_channel:
        destinations.append(SlackDestination(settings.alerts.slack_channel, token=slack_token or ""))
    return destinations or [FileDestination(settings.alerts_file)]


def unconfigured_warning(path: Path) -> str:
    return (
        f"no alert destination is configured: alerts are appended to {path}. Set "
        "SPOTIFY_ASSETS_ALERT_WEBHOOK (a URL that receives the JSON payload), or SLACK_BOT_TOKEN and "
        "SPOTIFY_ASSETS_SLACK_CHANNEL, to be notified."
    )


# --- sending: each destination on its own, bounded retries, then a recorded give-up -----------


def record_undelivered(path: Path, alert: Alert, to: str, error: str) -> None:
    """Append the payload of an alert given up for `to` to the alerts file, so it is not lost:
    the documented payload plus `undelivered_to` and `delivery_error`. Raises OSError."""
    record = alert.payload() | {"undelivered_to": [to], "delivery_error": error}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


Log = Any  # a logger: .info / .warning / .error (the sensor's context.log)


class Delivery:
    """One tick's sending. Each (alert, destination) is delivered, or kept as `Pending` and
    retried later, or given up after MAX_ATTEMPTS; so a destination that fails never holds
    back another destination, nor the alerts after it.

    Within a tick, a destination that failed is not tried again (alerts for it wait for the
    next ticks, without counting an attempt), and no send starts once `budget_s` is spent.
    """

    def __init__(
        self,
        destinations: Sequence[Destination],
        state: AlertState,
        *,
        record_path: Path,
        log: Log,
        now: float | None = None,
        budget_s: float = TICK_SEND_BUDGET_S,
        monotonic: Any = time.monotonic,
    ) -> None:
        self.destinations = list(destinations)
        self.pending: list[Pending] = list(state.pending)
        self.gave_up: list[GaveUp] = list(state.gave_up)
        self.record_path = record_path
        self.log = log
        self.now = time.time() if now is None else now
        self._monotonic = monotonic
        self._deadline = monotonic() + budget_s
        self.failed_now: set[str] = set()  # destinations that failed in this tick
        self.sent: list[tuple[Alert, str]] = []
        self.failures: list[str] = []  # what the tick reports
        self.new_give_ups: list[GaveUp] = []

    def out_of_time(self) -> bool:
        return self._monotonic() >= self._deadline

    def retry_due(self) -> None:
        """Try again, oldest first, the pending deliveries whose time has come."""
        names = {d.name: d for d in self.destinations}
        waiting, self.pending = self.pending, []
        for item in waiting:
            if item.to not in names:
                self._give_up(item.alert, item.to, item.attempts, f"{item.to} is no longer configured")
            elif item.next_at > self.now or item.to in self.failed_now or self.out_of_time():
                self.pending.append(item)
            else:
                self._attempt(item.alert, names[item.to], item.attempts)

    def send_new(self, alert: Alert, skip: Iterable[str] = ()) -> None:
        """Send a new alert to every destination (but those in `skip`, already reached)."""
        for destination in self.destinations:
            if destination.name in skip:
                continue
            if destination.name in self.failed_now or self.out_of_time():
                reason = "not tried: " + (
                    f"{destination.name} failed earlier in this tick" if destination.name in self.failed_now
                    else "the tick's sending time was spent"
                )
                self._keep(Pending(alert, destination.name, 0, self.now, reason))
                continue
            self._attempt(alert, destination, 0)

    def _attempt(self, alert: Alert, destination: Destination, attempts_before: int) -> None:
        try:
            destination.send(alert)
        except AlertDeliveryError as err:
            self.failed_now.add(destination.name)
            attempts = attempts_before + 1
            if attempts >= MAX_ATTEMPTS:
                self._give_up(alert, destination.name, attempts, str(err))
                return
            delay = RETRY_DELAYS_S[attempts - 1]
            when = "on the next tick" if delay == 0 else f"in {delay // 60} min"
            self.failures.append(f"delivery failed for {alert.label} ({err}); retried {when}")
            self.log.warning(
                f"could not deliver the {alert.status} alert for {alert.label} to {destination.name}: {err}. "
                f"Attempt {attempts} of {MAX_ATTEMPTS}: it is retried {when}."
            )
            self._keep(Pending(alert, destination.name, attempts, self.now + delay, str(err)))
            return
        self.sent.append((alert, destination.name))
        retried = f" (attempt {attempts_before + 1})" if attempts_before else ""
        self.log.info(f"sent the {alert.status} alert for {alert.label} to {destination.name}{retried}")

    def _keep(self, item: Pending) -> None:
        self.pending.append(item)
        while len(self.pending) > MAX_PENDING:
            oldest = self.pending.pop(0)
            self._give_up(
                oldest.alert, oldest.to, oldest.attempts,
                f"more than {MAX_PENDING} deliveries waiting for a retry; last error: {oldest.error or 'none'}",
            )

    def _give_up(self, alert: Alert, to: str, attempts: int, error: str) -> None:
        record = GaveUp(alert.id, alert.label, to, attempts, iso_seconds(self.now), error)
        self.new_give_ups.append(record)
        self.gave_up = (self.gave_up + [record])[-MAX_GAVE_UP_KEPT:]
        try:
            record_undelivered(self.record_path, alert, to, error)
            kept = f"its payload is in {self.record_path} with undelivered_to"
        except OSError as err:
            kept = f"and it could not be written to {self.record_path} either ({err})"
        self.log.error(
            f"gave up delivering the {alert.status} alert {alert.id} ({alert.label}) to {to} after "
            f"{attempts} attempt{'s' if attempts != 1 else ''}: {error}; {kept}"
        )

    def summary(self) -> str:
        """The tick's SkipReason: what was sent, what failed and when it is retried, what was given up."""
        parts = []
        alerts_sent: dict[str, Alert] = {}
        for alert, _ in self.sent:
            alerts_sent.setdefault(alert.id, alert)
        if alerts_sent:
            parts.append(_sent_summary(list(alerts_sent.values())))
        parts.extend(self.failures)
        for g in self.new_give_ups:
            parts.append(f"gave up on {g.label} for {g.to} after {g.attempts} attempts, recorded in {self.record_path}")
        if self.pending:
            parts.append(f"{len(self.pending)} deliver{'ies' if len(self.pending) != 1 else 'y'} waiting for a retry")
        return "; ".join(parts)


def _sent_summary(sent: Sequence[Alert]) -> str:
    """`sent 1 alert (failed: songs/unique_key, window 2026-01-01-00:00)`."""
    shown = "; ".join(f"{a.status}: {a.label}" for a in sent[:3])
    more = f"; and {len(sent) - 3} more" if len(sent) > 3 else ""
    return f"sent {len(sent)} alert{'s' if len(sent) != 1 else ''} ({shown}{more})"
