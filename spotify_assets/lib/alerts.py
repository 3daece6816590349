"""Alerts for failed asset checks: what an alert says, where it goes, and when it is sent.

No Dagster definitions here: `defs/alerts.py` holds the sensor that feeds this module.

* `Evaluation` is one asset check evaluation as read from the event log, `Alert` what a person
  is told about it (`Alert.payload()` is the documented JSON).
* `plan_alerts` is the pure state machine that decides which evaluations produce which alerts,
  given the state kept in the sensor cursor (`AlertState`). It is what makes the same
  evaluation never alert twice, and a check that keeps failing on re-runs of the same window
  alert once.
* Destinations deliver an alert: a generic webhook, Slack (dagster-slack), or, with nothing
  configured, a JSON-lines file in the data directory.

Secrets (the Slack token, the webhook URL, which usually embeds a token) are read from the
environment when alerts are sent, and never put in a payload, a log line or an error message:
a webhook is named by its scheme and host only.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import dagster as dg
import requests

from spotify_assets.lib.settings import Settings
from spotify_assets.lib.timestamps import iso_z

SOURCE = "spotify-assets"
SLACK_API_URL = "https://slack.com/api/"  # tests point this at a fake Slack on loopback
REQUEST_TIMEOUT_S = 10.0
DETAIL_MAX_CHARS = 1000
SUMMARY_MAX_CHARS = 300

# The state kept in the sensor cursor, and how much work one tick does.
MAX_FAILING_KEYS = 1000  # beyond this the oldest failing keys are forgotten (cursor size)
MAX_ALERTS_PER_TICK = 25  # the rest are sent on the next ticks, in order
MAX_EVALUATIONS_PER_TICK = 5000
REPLAY_LOOKBACK_S = 24 * 3600  # a sensor without a cursor looks at the last day

_PARTITION_TAG = "dagster/partition"
_RANGE_START_TAG = "dagster/asset_partition_range_start"
_RANGE_END_TAG = "dagster/asset_partition_range_end"

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


def evaluation_from_entry(storage_id: int, entry: Any, run_tags: Mapping[str, str] | None = None) -> Evaluation | None:
    """The evaluation in an ASSET_CHECK_EVALUATION event log entry (None for any other entry).

    A check whose spec has no partitions definition records no partition even when it ran in a
    window's run: the window is then taken from the run's partition tags.
    """
    event = getattr(entry, "dagster_event", None)
    if event is None or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    data = event.asset_check_evaluation_data
    window = data.partition or _window_of_run(run_tags or {})
    return Evaluation(
        storage_id=storage_id,
        asset_path=tuple(data.asset_key.path),
        check=data.check_name,
        passed=bool(data.passed),
        severity="WARN" if data.severity == dg.AssetCheckSeverity.WARN else "ERROR",
        blocking=bool(data.blocking),
        window=window,
        description=data.description,
        metadata={name: plain_value(value) for name, value in (data.metadata or {}).items()},
        run_id=entry.run_id or None,
        timestamp=float(entry.timestamp),
    )


def _window_of_run(tags: Mapping[str, str]) -> str | None:
    if tags.get(_PARTITION_TAG):
        return tags[_PARTITION_TAG]
    start, end = tags.get(_RANGE_START_TAG), tags.get(_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def plain_value(value: Any) -> Any:
    """A metadata value as JSON: numbers, booleans and null as they are, the rest as text
    (markdown, JSON, tables...) cut to about 1,000 characters."""
    if isinstance(value, dg.TimestampMetadataValue):
        return _iso(value.value)
    if isinstance(value, dg.TableMetadataValue):
        return _truncate(json.dumps([record.data for record in value.records], default=str))
    raw = value.value if isinstance(value, dg.MetadataValue) else value
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else str(raw)
    if isinstance(raw, str):
        return _truncate(raw)
    if isinstance(raw, Mapping | list | tuple):
        return _truncate(json.dumps(raw, default=str))
    return _truncate(str(raw))


def _truncate(text: str, limit: int = DETAIL_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(timestamp: float) -> str:
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
            evaluated_at=_iso(evaluation.timestamp),
            webserver_url=webserver_url.rstrip("/"),
        )

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
        """The documented JSON body (README, section Alerts)."""
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
            parts.append(f"{name}={_truncate(' '.join(shown.split()), 60)}")
        text = ", ".join(parts)
    if not text:
        text = f"{evaluation.check} {'passed' if evaluation.passed else 'failed'}"
    return _truncate(text, SUMMARY_MAX_CHARS)


# --- when: the state machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """An alert delivered to some of the destinations before another one failed."""

    alert_id: str
    to: tuple[str, ...]


@dataclass(frozen=True)
class AlertState:
    """What the sensor cursor remembers between ticks and across restarts.

    `after`: the event log storage id of the last evaluation handled. `failing`: the (asset,
    check, window) keys whose failure was announced and that have not passed since, oldest
    first. `replay`: the first ticks of a sensor without a cursor, which announce what is
    failing now among the evaluations after `after` (see `plan_alerts`). `delivered`: an alert
    that reached some destinations but not all, so a retry skips those.
    """

    after: int = -1
    failing: tuple[CheckKey, ...] = ()
    replay: bool = False
    delivered: Delivered | None = None

    def to_cursor(self) -> str:
        doc: dict[str, Any] = {"after": self.after, "failing": [list(key) for key in self.failing]}
        if self.replay:
            doc["replay"] = True
        if self.delivered:
            doc["delivered"] = {"id": self.delivered.alert_id, "to": list(self.delivered.to)}
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
            )
        except (ValueError, TypeError, KeyError) as err:
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


# --- reading the event log ------------------------------------------------------------------


def read_evaluations(
    instance: dg.DagsterInstance, after: int, *, limit: int = MAX_EVALUATIONS_PER_TICK
) -> tuple[list[Evaluation], int]:
    """Check evaluations after the storage id `after`, oldest first, and the last id read.

    `get_logs_for_all_runs_by_log_id` reads the cross-run index, where every event log storage
    (SQLite's run-sharded default included) keeps check evaluations under one increasing id.
    `get_event_records` with an id cursor raises on that SQLite storage.
    """
    batch = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=after, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=limit
    )
    entries = sorted(batch.items())
    cursor = entries[-1][0] if entries else after
    run_ids = sorted({entry.run_id for _, entry in entries if entry.run_id})
    tags: dict[str, Mapping[str, str]] = {}
    for chunk in range(0, len(run_ids), 200):  # bounded IN lists
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids[chunk : chunk + 200])):
            tags[record.dagster_run.run_id] = record.dagster_run.tags
    evaluations = []
    for storage_id, entry in entries:
        evaluation = evaluation_from_entry(storage_id, entry, tags.get(entry.run_id))
        if evaluation is not None:
            evaluations.append(evaluation)
    return evaluations, cursor


def lookback_start(instance: dg.DagsterInstance, cutoff: float) -> int:
    """The storage id after which check evaluations are at or after `cutoff` (epoch seconds).

    A binary search over the index (one single-row query per step), so a sensor starting on an
    instance with a long history reads only the last day, not the whole history.
    """
    storage = instance.event_log_storage

    def first_after(storage_id: int) -> Any | None:
        batch = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=storage_id, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1
        )
        return next(iter(batch.values()), None)

    low, high = -1, max(storage.get_maximum_record_id() or -1, -1)
    while low < high:
        middle = (low + high) // 2
        entry = first_after(middle)
        if entry is None or entry.timestamp >= cutoff:
            high = middle
        else:
            low = middle + 1
    return low


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
    return _truncate(" ".join(text.split()), 300)


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    return [url, path_query, parts.path if parts.path not in ("", "/") else "", parts.query, userinfo]


@dataclass(frozen=True)
class WebhookDestination:
    """POSTs the payload as JSON. Any answer but 2xx is an error (redirects are not followed)."""

    url: str = field(repr=False)

    @property
    def name(self) -> str:
        return f"webhook {redact_url(self.url)}"

    def __repr__(self) -> str:
        return f"WebhookDestination({redact_url(self.url)!r})"

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.payload()).encode()
        try:
            response = requests.post(
                self.url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": f"{SOURCE}-alerts"},
                timeout=REQUEST_TIMEOUT_S,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            # requests names the URL's path (and so its token) in its messages
            raise AlertDeliveryError(f"{self.name}: {type(err).__name__}: {_scrub(str(err), _url_secrets(self.url))}") from None
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryError(f"{self.name} answered HTTP {response.status_code}")


@dataclass(frozen=True)
class SlackDestination:
    """Posts to a channel with dagster-slack's client; the token (SLACK_BOT_TOKEN) is read from
    the environment at send time and travels only in the Authorization header."""

    channel: str
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False, compare=False)
    base_url: str | None = None  # None: SLACK_API_URL

    @property
    def name(self) -> str:
        return f"Slack {self.channel}"

    def send(self, alert: Alert) -> None:
        from dagster_slack import SlackResource
        from slack_sdk.errors import SlackApiError

        token = (self.env.get("SLACK_BOT_TOKEN") or "").strip()
        if not token:
            raise AlertDeliveryError(f"{self.name}: SLACK_BOT_TOKEN is not set")
        client = SlackResource(token=token).get_client()
        client.base_url = self.base_url or SLACK_API_URL
        client.timeout = int(REQUEST_TIMEOUT_S)
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


def destinations_from_settings(settings: Settings, env: Mapping[str, str] = os.environ) -> list[Destination]:
    """The configured destinations: the webhook and/or Slack; with neither, the alerts file."""
    destinations: list[Destination] = []
    url = (env.get("SPOTIFY_ASSETS_ALERT_WEBHOOK") or "").strip()
    if settings.alerts.webhook and url:
        destinations.append(WebhookDestination(url))
    if settings.alerts.slack_channel:
        destinations.append(SlackDestination(settings.alerts.slack_channel, env=env))
    return destinations or [FileDestination(settings.alerts_file)]


def unconfigured_warning(path: Path) -> str:
    return (
        f"no alert destination is configured: alerts are appended to {path}. Set "
        "SPOTIFY_ASSETS_ALERT_WEBHOOK (a URL that receives the JSON payload), or SLACK_BOT_TOKEN and "
        "SPOTIFY_ASSETS_SLACK_CHANNEL, to be notified."
    )
