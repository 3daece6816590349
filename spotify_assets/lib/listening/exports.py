"""Spotify's personal data export (listening history) parsed into `streams` rows.

Three formats are read, recognised by file name (`detect_format`):

- `extended`: "Extended streaming history", `Streaming_History_Audio_<years>_<n>.json`. A JSON
  list of plays with `ts` (ISO 8601, UTC, when playback ended), `ms_played`, the
  `master_metadata_*` track fields, `spotify_track_uri`, the episode fields, `conn_country`,
  `platform`, `ip_addr`, `reason_start`/`reason_end`, `shuffle`, `skipped` (nullable),
  `offline`, `offline_timestamp`, `incognito_mode`.
- `endsong`: the older extended files, `endsong_<n>.json`: the same fields, with
  `ip_addr_decrypted` instead of `ip_addr`, plus `username` and `user_agent_decrypted`.
- `account`: the short "Account data" files, `StreamingHistory_music_<n>.json` (and the older
  `StreamingHistory<n>.json`): `endTime` ("2021-02-04 19:02", UTC), `artistName`, `trackName`,
  `msPlayed`; `StreamingHistory_podcast_<n>.json`: `endTime`, `podcastName`, `episodeName`,
  `msPlayed`.

`Streaming_History_Video_*.json` (video podcasts) is recognised but not ingested:
`detect_format` gives None for it, like any file that is not a listening export, and
`skip_reason` says why, for a caller that reports the files it passes over.

Personal data: the IP address is never stored. With a key, `ip_hash` is a keyed hash
(HMAC-SHA256, 32 hex characters) of the address, so plays from one address can be grouped
without keeping it; without a key it is null. `username` and `user_agent_decrypted` are dropped,
and no error message ever quotes an IP address.

A file is parsed whole or not at all: anything malformed raises `ExportError` naming the file,
the row and the field.

Plays are unique by play, not by file (`play_ids`). Spotify's export always holds the whole
history, so a new export repeats every play of the old one; each play gets `play_id`, a hash of
what identifies it in every export: the listener, when playback ended (full precision), what
was played (the track or episode URI; without one, the artist and track names or the show and
episode names), the milliseconds played, the format family, and its occurrence among identical
plays in the same file (two zero-millisecond skips of one track in one minute are two plays, and
a re-export holds both again). Cross-format decision: `extended` and `endsong` are one family (the
same fields, to the second: the same play in both counts once); `account` is another: its end
time is to the minute and it has names but no URIs, so its plays cannot be matched with an
extended play's without merging distinct plays; the same play in account and extended files
counts once per family. Drop one family per listener (the extended one when you have it).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import STREAMS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    pd = lazy("pandas")
    np = lazy("numpy")

EXTENDED = "extended"
ENDSONG = "endsong"
ACCOUNT = "account"
FORMATS = (EXTENDED, ENDSONG, ACCOUNT)

IP_HASH_HEX_CHARS = 32

_EXTENDED_NAME = re.compile(r"Streaming_History_Audio_.+\.json")
_VIDEO_NAME = re.compile(r"Streaming_History_Video_.+\.json")
_ENDSONG_NAME = re.compile(r"endsong_\d+\.json")
_ACCOUNT_NAME = re.compile(r"StreamingHistory(?:_music_\d+|_podcast_\d+|\d*)\.json")

# An offline_timestamp below this is in seconds (up to the year 5138), at or above it in
# milliseconds (from 1973-03-03 on); at or above _MAX_EPOCH_MS it is neither.
_SECONDS_BELOW = 10**11
_MAX_EPOCH_MS = 10**14
_TIME_PART = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_MAX_QUOTED = 80


class ExportError(ValueError):
    """A listening export that cannot be read; the message names the file, and the row if any."""

    def __init__(self, source_file: str, problem: str, row: int | None = None):
        self.source_file = source_file
        self.row = row
        self.problem = problem
        where = f"{source_file}: row {row}: " if row is not None else f"{source_file}: "
        super().__init__(where + problem)


def detect_format(name: str) -> str | None:
    """'extended', 'endsong' or 'account' for a listening-export file name (a path's last part
    is used), else None: not a listening export, or video history, which is not ingested."""
    base = _base_name(name)
    if _EXTENDED_NAME.fullmatch(base):
        return EXTENDED
    if _ENDSONG_NAME.fullmatch(base):
        return ENDSONG
    if _ACCOUNT_NAME.fullmatch(base):
        return ACCOUNT
    return None


def skip_reason(name: str) -> str | None:
    """Why a recognised export file is deliberately not ingested (None for any other file)."""
    if _VIDEO_NAME.fullmatch(_base_name(name)):
        return "video history (video podcasts): not ingested, streams holds audio plays"
    return None


def _base_name(name: str) -> str:
    """The last part of a path with / or \\ separators ('' for a folder: it ends with one)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def hash_ip(ip: str, key: bytes) -> str:
    """The keyed hash stored for an IP address: hex HMAC-SHA256 truncated to 32 characters.

    The address is normalised first (an IPv6 address has one spelling), so the same address
    gives the same hash in old and new exports."""
    text = ip.strip()
    try:
        text = ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:IP_HASH_HEX_CHARS]


# Export field -> streams column, per format. The time and ms fields are required.
_EXTENDED_STRINGS = {
    "track_name": "master_metadata_track_name",
    "artist_name": "master_metadata_album_artist_name",
    "album_name": "master_metadata_album_album_name",
    "track_uri": "spotify_track_uri",
    "episode_name": "episode_name",
    "show_name": "episode_show_name",
    "episode_uri": "spotify_episode_uri",
    "conn_country": "conn_country",
    "platform": "platform",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
}
_EXTENDED_BOOLS = {
    "shuffle": "shuffle",
    "skipped": "skipped",
    "offline": "offline",
    "incognito_mode": "incognito_mode",
}
_ACCOUNT_STRINGS = {
    "track_name": "trackName",
    "artist_name": "artistName",
    "episode_name": "episodeName",
    "show_name": "podcastName",
}
_IP_FIELDS = ("ip_addr", "ip_addr_decrypted")


def parse_export(
    data: bytes,
    *,
    fmt: str,
    listener: str,
    source_file: str,
    ingested_at: datetime,
    ip_hash_key: bytes | None,
) -> pd.DataFrame:
    """The plays of one export file as a frame conformed to `STREAMS`, in file order.

    `fmt` is what `detect_format` said of the file; `source_file` names it in the table and in
    errors. Raises ExportError for a malformed file (nothing is returned for part of a file),
    ValueError for bad arguments.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not listener:
        raise ValueError("listener must be a non-empty name")
    if ingested_at.utcoffset() is None:
        raise ValueError(f"ingested_at must be timezone-aware, got {ingested_at.isoformat()}")
    if ip_hash_key is not None and (not isinstance(ip_hash_key, bytes) or not ip_hash_key):
        raise ValueError("ip_hash_key must be non-empty bytes, or None to store no IP hash")

    rows = _load_rows(data, source_file)
    n = len(rows)
    if fmt == ACCOUNT:
        time_field, ms_field, time_format = "endTime", "msPlayed", "%Y-%m-%d %H:%M"
        string_fields, bool_fields = _ACCOUNT_STRINGS, {}
    else:
        time_field, ms_field, time_format = "ts", "ms_played", "%Y-%m-%dT%H:%M:%SZ"
        string_fields, bool_fields = _EXTENDED_STRINGS, _EXTENDED_BOOLS

    played_at = _timestamps(rows, time_field, time_format, source_file)
    ms_played = _column(rows, ms_field, _is_ms, "is not a whole, non-negative number of milliseconds",
                        source_file, required=True)
    columns: dict[str, Any] = {
        "listener": [listener] * n,
        "played_at": played_at,
        "ms_played": pd.array([int(v) for v in ms_played], dtype="Int64"),
    }
    for column in ("track_name", "artist_name", "album_name", "track_uri", "episode_name", "show_name",
                   "episode_uri", "conn_country", "platform", "reason_start", "reason_end"):
        field = string_fields.get(column)
        columns[column] = (
            [None] * n if field is None
            else _column(rows, field, _is_string, "is not a string", source_file)
        )
    columns["song_id"] = [_song_id(uri) for uri in columns["track_uri"]]
    columns["ip_hash"] = _ip_hashes(rows, ip_hash_key, source_file) if fmt != ACCOUNT else [None] * n
    for column in ("shuffle", "skipped", "offline", "incognito_mode"):
        field = bool_fields.get(column)
        values = [None] * n if field is None else _column(rows, field, _is_bool, "is not true, false or null", source_file)
        columns[column] = pd.array(values, dtype="boolean")
    columns["offline_at"] = _offline_times(rows if fmt != ACCOUNT else [{}] * n, source_file)
    columns["source_format"] = [fmt] * n
    columns["source_file"] = [source_file] * n
    columns["source_sha256"] = [hashlib.sha256(data).hexdigest()] * n
    columns["source_row"] = pd.array(list(range(n)), dtype="Int32")
    ingested = pd.Timestamp(ingested_at).tz_convert("UTC")
    columns["ingested_at"] = pd.Series([ingested] * n, dtype="datetime64[us, UTC]")
    frame = pd.DataFrame({k: v for k, v in columns.items()}, index=pd.RangeIndex(n))
    frame["play_id"] = play_ids(frame)
    return STREAMS.conform(frame[STREAMS.column_names])


PLAY_ID_HEX_CHARS = 32


def play_ids(frame: pd.DataFrame) -> list[str]:
    """The natural key of each play (see the module notes): a hash of listener, end time,
    what was played, ms played and format family, with the occurrence among identical plays of
    the same file (`source_sha256`, in `source_row` order). Needs those columns only, so an old
    table's rows get the same ids their files would give today."""
    if frame.empty:
        return []
    n = len(frame)

    def texts(name: str) -> list[str]:
        if name not in frame.columns:
            return [""] * n
        return ["" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in frame[name]]

    track_uri, episode_uri = texts("track_uri"), texts("episode_uri")
    episode, show = texts("episode_name"), texts("show_name")
    artist, track, album = texts("artist_name"), texts("track_name"), texts("album_name")
    played = pd.to_datetime(frame["played_at"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist()
    ms = ["" if pd.isna(v) else str(int(v)) for v in frame["ms_played"]]
    listener = [str(v) for v in frame["listener"]]
    family = [ACCOUNT if f == ACCOUNT else EXTENDED for f in frame["source_format"]]
    sha = list(frame["source_sha256"])
    rows = [int(v) for v in frame["source_row"]]
    seen: dict[tuple[str, str], int] = {}
    out = [""] * n
    for i in sorted(range(n), key=lambda i: (sha[i], rows[i])):
        if track_uri[i] or episode_uri[i]:
            what = "uri:" + (track_uri[i] or episode_uri[i])
        elif episode[i] or show[i]:
            what = f"episode:{show[i]}\x1e{episode[i]}"
        else:
            what = f"track:{artist[i]}\x1e{track[i]}\x1e{album[i]}"
        base = "\x1f".join((family[i], listener[i], played[i], what, ms[i]))
        k = seen.get((sha[i], base), 0)
        seen[(sha[i], base)] = k + 1
        out[i] = hashlib.sha256(f"{base}\x1f{k}".encode()).hexdigest()[:PLAY_ID_HEX_CHARS]
    return out


# --------------------------------------------------------------------------------------------


def _load_rows(data: bytes, source_file: str) -> list[dict[str, Any]]:
    body = bytes(data)
    if body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as some editors write
        body = body[3:]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ExportError(source_file, f"not valid JSON ({err})") from None
    if not isinstance(parsed, list):
        raise ExportError(source_file, f"expected a JSON list of plays, got {_json_kind(parsed)}")
    for i, row in enumerate(parsed):
        if type(row) is not dict:
            raise ExportError(source_file, f"expected an object (a play), got {_json_kind(row)}", i)
    return parsed


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _is_string(value: Any) -> bool:
    return value is None or type(value) is str


def _is_bool(value: Any) -> bool:
    return value is None or type(value) is bool


def _is_ms(value: Any) -> bool:
    if type(value) is int:
        return value >= 0
    return type(value) is float and value >= 0 and value.is_integer()


def _column(
    rows: list[dict[str, Any]],
    field: str,
    valid: Callable[[Any], bool],
    problem: str,
    source_file: str,
    *,
    required: bool = False,
) -> list[Any]:
    values = [row.get(field) for row in rows]
    if required and None in values:
        i = values.index(None)
        raise ExportError(source_file, f"{'missing' if field not in rows[i] else 'null'} {field!r}", i)
    if not all(map(valid, values)):
        i = next(i for i, v in enumerate(values) if not valid(v))
        raise ExportError(source_file, f"{field!r} {problem}: {_quote(values[i])}", i)
    return values


def _timestamps(rows: list[dict[str, Any]], field: str, exact: str, source_file: str) -> pd.Series:
    """UTC timestamps; the export's own spelling is parsed in bulk, any other ISO 8601 spelling
    one by one (an offset is honoured, none means UTC, as Spotify documents these fields)."""
    values = _column(rows, field, _is_string, "is not an ISO 8601 timestamp", source_file, required=True)
    parsed = pd.to_datetime(pd.Series(values, dtype=object), format=exact, utc=True, errors="coerce")
    parsed = parsed.astype("datetime64[us, UTC]")
    for i in parsed.index[parsed.isna()]:
        parsed.iloc[i] = _parse_iso(values[i], field, source_file, i)
    return parsed


def _parse_iso(text: str, field: str, source_file: str, row: int) -> pd.Timestamp:
    moment = None
    if _TIME_PART.match(text.strip()):
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ExportError(source_file, f"{field!r} is not an ISO 8601 timestamp: {_quote(text)}", row)
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return pd.Timestamp(moment).tz_convert("UTC").as_unit("us")
    except (OverflowError, ValueError):
        raise ExportError(source_file, f"{field!r} is out of range: {_quote(text)}", row) from None


def _offline_times(rows: list[dict[str, Any]], source_file: str) -> pd.Series:
    """`offline_timestamp` as UTC: epoch seconds or milliseconds (told apart by magnitude);
    0 and null mean none."""
    micros = np.full(len(rows), np.iinfo(np.int64).min, dtype=np.int64)  # that value is NaT
    for i, row in enumerate(rows):
        value = row.get("offline_timestamp")
        if value is None or (value == 0 and type(value) is not bool):
            continue
        if type(value) not in (int, float) or not 0 < value < _MAX_EPOCH_MS:
            raise ExportError(
                source_file, f"'offline_timestamp' is not epoch seconds or milliseconds: {_quote(value)}", i
            )
        micros[i] = round(value * (1_000_000 if value < _SECONDS_BELOW else 1_000))
    return pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC")


def _song_id(uri: str | None) -> str | None:
    if uri is None or not uri.startswith("spotify:track:"):
        return None
    track_id = uri[len("spotify:track:"):]
    return track_id if track_id.isascii() and track_id.isalnum() else None


def _ip_hashes(rows: list[dict[str, Any]], key: bytes | None, source_file: str) -> list[str | None]:
    out: list[str | None] = []
    cache: dict[str, str] = {}
    for i, row in enumerate(rows):
        ip = None
        for field in _IP_FIELDS:
            ip = row.get(field)
            if ip is not None:
                break
        if ip is not None and type(ip) is not str:
            # Never quote the value: it is personal data.
            raise ExportError(source_file, f"{field!r} is {_json_kind(ip)}, not a string", i)
        if key is None or not ip or not ip.strip():
            out.append(None)
            continue
        hashed = cache.get(ip)
        if hashed is None:
            hashed = cache[ip] = hash_ip(ip, key)
        out.append(hashed)
    return out
