"""The Snowflake scripts in sql/snowflake/: every statement parses, and what fakesnow can run
does what the Python normalizer does.

Why both: a script that only ever runs in a real account is otherwise checked by nobody until
an operator pastes it into a worksheet, and the SQL route (snowpipe.sql) restates
normalize.py's semantics in another language, where they drift silently. So the flatten views
are executed on fakesnow (Snowflake SQL translated to DuckDB, spoken to by the real
snowflake.connector) over real documents, and their rows are compared with
`normalize_documents` table by table.

What fakesnow cannot execute, and so is only parsed here (each listed in NOT_EXECUTED with
the reason): warehouses, roles, users, grants and ownership (fakesnow has no access control:
its parser rejects CREATE WAREHOUSE/ROLE/USER and GRANT), the storage integration, the pipe,
the stream and the task (no S3, no Snowpipe, no change tracking, no scheduler), SHOW PIPES
and DESC INTEGRATION (they describe those objects), and the stored procedure (no Snowflake
Scripting). The procedure's transaction body is plain DML, though: it is taken out of the
procedure and run on fakesnow with an ordinary table standing in for the stream.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.dialects.snowflake import Snowflake
from sqlglot.tokens import TokenType

from spotify_assets.lib.spotify.extract import PlaylistExtractor
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.samples.source import SampleSource
from spotify_assets.lib.raw.store import ROOT, SnapshotStore
from spotify_assets.lib.window import window_slug
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse.snowflake import DIALECT as SNOWFLAKE
from spotify_assets.lib.timestamps import iso_z
from spotify_assets_tests.support.fixtures import artist, row, spotify_id, track
from spotify_assets_tests.support.snowflake import connection_args

SQL_DIR = Path(__file__).resolve().parents[2] / "sql" / "snowflake"
SETUP = SQL_DIR / "setup.sql"
SNOWPIPE = SQL_DIR / "snowpipe.sql"

# --- splitting and parsing ------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its exact text and what sqlglot made of it."""

    text: str
    expression: exp.Expression

    @property
    def kind(self) -> str:
        """'CREATE VIEW', 'GRANT', 'CREATE PIPE', ...: what the statement does, for deciding
        whether fakesnow can run it."""
        e = self.expression
        if isinstance(e, exp.Command):
            words = re.sub(r"\bOR\s+REPLACE\b", "", self.text, count=1, flags=re.I).split()
            if words[0].upper() in ("CREATE", "ALTER", "GRANT"):
                return f"{words[0]} {words[1]}".upper()
            return words[0].upper()
        if isinstance(e, exp.Create):
            return f"CREATE {e.args['kind']}".upper()
        if isinstance(e, exp.Use):
            return f"USE {e.args.get('kind').this}".upper() if e.args.get("kind") else "USE"
        return type(e).__name__.upper()


def split_statements(text: str) -> list[str]:
    """The script's statements, split at top-level semicolons by sqlglot's Snowflake tokenizer
    (so a ';' inside a string, a comment or a $$ procedure body does not split).

    Why not `sqlglot.parse(whole_script)`: in sqlglot 30 a CREATE PROCEDURE ... AS $$...$$
    swallows everything after it, up to the end of the script, into one statement (the task,
    ALTER TASK and the grants vanished into the procedure). Parsing statement by statement, and
    requiring exactly one expression from each, makes such a swallow a test failure.
    """
    statements: list[str] = []
    current: list[Any] = []
    for token in Snowflake().tokenize(text):
        if token.token_type == TokenType.SEMICOLON:
            if current:
                statements.append(text[current[0].start : current[-1].end + 1])
            current = []
        else:
            current.append(token)
    if current:
        statements.append(text[current[0].start : current[-1].end + 1])
    return statements


def parse_script(path: Path) -> list[Statement]:
    out = []
    for text in split_statements(path.read_text()):
        expressions = sqlglot.parse(text, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
        assert len(expressions) == 1 and expressions[0] is not None, f"not one statement: {text[:200]}"
        out.append(Statement(text, expressions[0]))
    return out


def squash(text: str) -> str:
    return " ".join(text.split())


# sqlglot (30.x) has no grammar for these Snowflake statements: it keeps them whole as an
# exp.Command (keyword + the rest of the text, unparsed). The tests then check that the
# Command is the statement expected and holds its complete text, and parse the parts that
# are ordinary SQL (the pipe's COPY INTO, the task's CALL) separately.
COMMAND_KINDS = {
    "CREATE ROLE", "CREATE USER", "ALTER USER", "GRANT ROLE", "GRANT OWNERSHIP",
    "CREATE PIPE", "CREATE STREAM", "CREATE TASK", "ALTER TASK", "SHOW",
}

# Statement kinds run on fakesnow, and those not run, with the reason.
EXECUTED = {"SET", "USE DATABASE", "CREATE DATABASE", "CREATE SCHEMA", "CREATE TABLE", "CREATE VIEW", "CREATE FILE FORMAT", "CREATE STAGE"}
NOT_EXECUTED = {
    "USE ROLE": "fakesnow has no roles (it accepts USE ROLE and ignores it)",
    "CREATE ROLE": "fakesnow has no access control",
    "CREATE USER": "fakesnow has no access control (CREATE USER ... TYPE/RSA_PUBLIC_KEY is not implemented)",
    "ALTER USER": "fakesnow has no access control",
    "CREATE WAREHOUSE": "fakesnow has no warehouses (DuckDB rejects the statement)",
    "GRANT": "fakesnow has no access control (DuckDB rejects GRANT)",
    "GRANT ROLE": "fakesnow has no access control",
    "GRANT OWNERSHIP": "fakesnow has no access control",
    "CREATE STORAGE INTEGRATION": "no S3 behind fakesnow; DuckDB rejects the statement",
    "DESCRIBE": "describes the storage integration, which is not created",
    "CREATE PIPE": "fakesnow has no Snowpipe",
    "CREATE STREAM": "fakesnow has no streams (no change tracking); a table stands in for it",
    "CREATE PROCEDURE": "fakesnow has no Snowflake Scripting; the body's DML is run on its own",
    "CREATE TASK": "fakesnow has no tasks",
    "ALTER TASK": "fakesnow has no tasks",
    "SHOW": "shows the pipe, which is not created",
}


@pytest.fixture(scope="module")
def setup_statements() -> list[Statement]:
    return parse_script(SETUP)


@pytest.fixture(scope="module")
def snowpipe_statements() -> list[Statement]:
    return parse_script(SNOWPIPE)


@pytest.mark.parametrize("path", [SETUP, SNOWPIPE], ids=lambda p: p.name)
def test_every_statement_parses_or_is_a_complete_known_command(path: Path) -> None:
    statements = parse_script(path)
    assert len(statements) >= 10
    for statement in statements:
        e = statement.expression
        if isinstance(e, exp.Command):
            assert statement.kind in COMMAND_KINDS, f"sqlglot gave up on an unexpected statement: {statement.text[:200]}"
            rest = e.expression if isinstance(e.expression, str) else e.expression.name
            assert squash(f"{e.this} {rest}") == squash(statement.text), "the Command lost part of the statement"
        else:
            # A fully parsed statement regenerates to SQL that sqlglot can parse again.
            again = sqlglot.parse(e.sql("snowflake"), read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
            assert len(again) == 1
        assert statement.kind in EXECUTED or statement.kind in NOT_EXECUTED, f"decide whether fakesnow runs {statement.kind}"


def test_setup_creates_what_the_pipeline_needs(setup_statements: list[Statement]) -> None:
    text = {s.kind: [] for s in setup_statements}
    for s in setup_statements:
        text[s.kind].append(squash(s.text).upper())
    assert any("TYPE = SERVICE" in t for t in text["CREATE USER"])
    [alter] = text["ALTER USER"]
    assert "RSA_PUBLIC_KEY = '<RSA_PUBLIC_KEY>'" in alter and "PASSWORD" not in alter
    assert {"DEFAULT_ROLE", "DEFAULT_WAREHOUSE", "DEFAULT_NAMESPACE"} <= set(re.findall(r"DEFAULT_\w+", alter))
    [warehouse] = text["CREATE WAREHOUSE"]
    for setting in ("WAREHOUSE_SIZE = XSMALL", "AUTO_SUSPEND = 60", "AUTO_RESUME = TRUE", "INITIALLY_SUSPENDED = TRUE"):
        assert setting in warehouse
    grants = " ".join(text["GRANT"])
    assert " ON ACCOUNT " not in grants, "the pipeline's role gets nothing account-wide"
    assert "CREATE TABLE, CREATE VIEW, CREATE STAGE ON SCHEMA IDENTIFIER($ANALYTICS_SCHEMA)" in grants
    # Every object of setup.sql is named by a session variable set once at the top.
    names = {s.expression.expressions[0].this.this.name.lower() for s in setup_statements if s.kind == "SET"}
    used = {v.lower() for s in setup_statements for v in re.findall(r"(?<![\w$])\$([a-z_]\w*)", s.text, re.I)}
    assert {"db", "wh", "pipeline_role", "service_user"} <= names and used <= names


def test_snowpipe_tables_are_the_declared_tables(snowpipe_statements: list[Statement]) -> None:
    """The task writes the same six tables the Dagster route writes: their DDL must be the one
    tables.py generates, or one route would load columns the other does not know."""
    ddl = {squash(s.text) for s in snowpipe_statements if s.kind == "CREATE TABLE"}
    for name, table in TABLES.items():
        assert squash(SNOWFLAKE.create_table(table, f"ANALYTICS.{name.upper()}")) in ddl


def test_the_pipe_loads_documents_and_skips_manifests(snowpipe_statements: list[Statement]) -> None:
    [pipe] = [s for s in snowpipe_statements if s.kind == "CREATE PIPE"]
    assert "AUTO_INGEST = TRUE" in squash(pipe.text).upper()
    copy = sqlglot.parse_one(re.split(r"\bAS\b", pipe.text, maxsplit=1)[1], read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(copy, exp.Copy) and copy.this.this.sql() == "RAW.PLAYLIST_SNAPSHOTS"
    assert "METADATA$FILENAME" in copy.sql("snowflake")
    [pattern] = [p.expression.name for p in copy.args["params"] if p.this.name.upper() == "PATTERN"]
    key = f"{SnapshotStore.window_prefix('2026-11-21-08:00')}v=20261121T160003123456Z-abc123/{spotify_id('p')}.json"
    relative = key.removeprefix(f"{ROOT}/")  # METADATA$FILENAME: the path under the stage URL
    assert re.fullmatch(pattern, relative) and re.fullmatch(pattern, f"spotify-assets/{key}")
    assert not re.fullmatch(pattern, SnapshotStore.manifest_key("2026-11-21-08:00").removeprefix(f"{ROOT}/"))


def test_the_task_calls_the_procedure_when_the_stream_has_data(snowpipe_statements: list[Statement]) -> None:
    [task] = [s for s in snowpipe_statements if s.kind == "CREATE TASK"]
    head, body = re.split(r"\bAS\b", task.text, maxsplit=1)
    assert "SYSTEM$STREAM_HAS_DATA('RAW.PLAYLIST_SNAPSHOTS_CHANGES')" in head and "TIMEZONE = 'UTC'" in head
    call = sqlglot.parse_one(body, read="snowflake")
    assert squash(call.sql("snowflake")) == "CALL RAW.NORMALIZE_PENDING_WINDOWS()"
    [stream] = [s for s in snowpipe_statements if s.kind == "CREATE STREAM"]
    assert "ON TABLE RAW.PLAYLIST_SNAPSHOTS APPEND_ONLY = TRUE" in squash(stream.text)
    [procedure] = [s for s in snowpipe_statements if s.kind == "CREATE PROCEDURE"]
    assert "RAW.NORMALIZE_PENDING_WINDOWS" in procedure.text
    assert [s.kind for s in snowpipe_statements].index("ALTER TASK") > [s.kind for s in snowpipe_statements].index("CREATE TASK")


def procedure_transaction(statements: list[Statement]) -> list[str]:
    """The DML the procedure runs between BEGIN TRANSACTION and COMMIT, each statement parsed,
    after checking the block around it rolls back on any error."""
    [procedure] = [s for s in statements if s.kind == "CREATE PROCEDURE"]
    body = procedure.expression.expression.expressions[0].name  # the $$ ... $$ text
    assert squash(body).startswith("BEGIN BEGIN TRANSACTION;")
    assert re.search(r"EXCEPTION\s+WHEN OTHER THEN\s+ROLLBACK;\s+RAISE;\s+END;\s*$", body)
    inner = body.split("BEGIN TRANSACTION;", 1)[1].split("COMMIT;", 1)[0]
    dml = split_statements(inner)
    for text in dml:
        [e] = sqlglot.parse(text, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
        assert isinstance(e, (exp.Insert, exp.Delete)), text
    return dml


def test_the_procedure_replaces_each_pending_window_in_every_table(snowpipe_statements: list[Statement]) -> None:
    dml = [squash(t) for t in procedure_transaction(snowpipe_statements)]
    assert dml[0].startswith("INSERT INTO RAW.PENDING_WINDOWS") and "FROM RAW.PLAYLIST_SNAPSHOTS_CHANGES" in dml[0]
    assert dml[-1] == "DELETE FROM RAW.PENDING_WINDOWS"
    pending = "WHERE window_start IN (SELECT window_start FROM RAW.PENDING_WINDOWS)"
    for name, table in TABLES.items():
        target = f"ANALYTICS.{name.upper()}"
        delete = dml.index(f"DELETE FROM {target} {pending}")
        insert = dml[delete + 1]
        columns = ", ".join(table.column_names)
        assert insert == f"INSERT INTO {target} ({columns}) SELECT {columns} FROM RAW.V_{name.upper()} {pending}"


def test_placeholders_are_the_documented_ones() -> None:
    """An operator edits what the header lists; nothing else may hide a placeholder."""
    setup, snowpipe = SETUP.read_text(), SNOWPIPE.read_text()
    assert set(re.findall(r"'[^'\n]*(<[A-Z0-9_]+>)", setup)) == {"<RSA_PUBLIC_KEY>"}
    in_statements = set(re.findall(r"<[A-Z0-9_]+>", " ".join(s.text for s in parse_script(SNOWPIPE))))
    header = snowpipe.split("-- EDIT HERE", 1)[1].split("\n-- AWS", 1)[0]
    assert in_statements == set(re.findall(r"<[A-Z0-9_]+>", header)) == {
        "<SPOTIFY_ASSETS_S3_BUCKET>", "<AWS_ACCOUNT_ID>", "<SNOWFLAKE_S3_ROLE>"
    }


# --- executing on fakesnow -----------------------------------------------------------------

def use_ordered_flatten(database: str) -> None:
    """Make fakesnow's FLATTEN number array elements by their position, as Snowflake does.

    fakesnow emulates FLATTEN with a DuckDB table macro whose INDEX is `row_number() OVER ()`,
    an order DuckDB does not promise: once the FLATTEN is correlated with many input rows
    (documents -> rows -> credits), INDEX and VALUE come apart: a song's second artist gets
    INDEX 0 (without this, two to four of the comparisons below failed in each of three runs).
    The SQL under test relies on INDEX as Snowflake defines it (a row's position in its
    playlist, the credit order), so the macro of the test database is redefined to take INDEX
    from the element's list position. This reaches into the
    in-process server's DuckDB (fakesnow.server.shared_fs); it must run after the scripts,
    because fakesnow re-creates its macros on CREATE DATABASE.
    """
    import fakesnow.server

    duck = fakesnow.server.shared_fs.duck_conn
    catalogs = {r[0] for r in duck.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    assert database in catalogs, "fakesnow no longer keeps its databases in shared_fs: revisit this workaround"
    duck.execute(ORDERED_FLATTEN.format(catalog=database))


ORDERED_FLATTEN = """
CREATE OR REPLACE MACRO {catalog}._fs_flatten(input) AS TABLE
    SELECT
        hash(TO_JSON(input))::UBIGINT AS SEQ,
        e.k AS KEY,
        COALESCE(e.k, '[' || e.i || ']') AS PATH,
        e.i AS INDEX,
        e.v AS VALUE,
        TO_JSON(input) AS THIS
    FROM (
        SELECT UNNEST(
            CASE WHEN json_type(TO_JSON(input)) = 'OBJECT'
                 THEN list_transform(
                    json_keys(TO_JSON(input)),
                    lambda x: struct_pack(k := x, v := CAST(TO_JSON(input) -> x AS JSON), i := NULL::BIGINT)
                 )
                 ELSE list_transform(
                    CAST(TO_JSON(input) AS JSON[]),
                    lambda x, n: struct_pack(k := NULL::VARCHAR, v := x, i := (n - 1)::BIGINT)
                 )
            END, recursive := true
        )
    ) AS e(k, v, i)
"""

W1 = datetime(2026, 11, 21, 8, tzinfo=timezone.utc)
W2 = datetime(2026, 11, 21, 16, tzinfo=timezone.utc)


def window_facts(start: datetime) -> dict[str, str]:
    return {"partition_key": start.strftime("%Y-%m-%d-%H:%M"), "start": iso_z(start), "end": iso_z(start + timedelta(hours=8))}


def sample_documents(start: datetime, playlists: slice) -> list[dict[str, Any]]:
    """Documents exactly as the raw asset writes them: the synthetic sample, read through the
    extractor (so both real oddities and the document envelope are the production ones)."""
    source = SampleSource(start)
    snapshots = PlaylistExtractor(source, concurrency=2).extract(source.playlist_ids[playlists])
    return [s.to_document(window_facts(start)) for s in snapshots]


def document(start: datetime, label: str, items: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    pid = spotify_id(f"playlist:{label}")
    doc = {
        "schema_version": 1,
        "playlist_id": pid,
        "status": "ok",
        "window": window_facts(start),
        "playlist": {
            "id": pid, "name": f"Edge {label}", "description": "edge cases", "public": False, "collaborative": True,
            "snapshot_id": "SNAP", "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
            "followers": {"total": 7}, "owner": {"id": "owner", "display_name": "Owner"},
        },
        "items": items,
        "extraction": {"total": len(items), "extracted_at": "2026-11-21T16:00:01.250000Z", "error": None},
    }
    doc.update(overrides)
    return doc


RELEASES = {  # label -> (release_date, release_date_precision)
    "year": ("1999", "year"), "month": ("2002-05", "month"), "day": ("2004-02-29", "day"),
    "zero": ("0000", "year"), "bad-day": ("2002-02-30", "day"), "year-wins": ("2003-07-01", "year"),
    "bad-month": ("2002-13", "month"), "no-precision": ("2005-11", None), "garbage": ("soon", "day"),
}


def edge_documents(start: datetime) -> list[dict[str, Any]]:
    """Every case the SQL must classify or compute as normalize.py does."""
    multi = track("multi", artists=3, popularity=61)
    multi["album"]["artists"] = [artist("Various Artists")]  # the album's artist is not the track's
    multi["artists"][1]["id"] = None  # a credit without an id: skipped, positions close up
    multi["artists"][2]["genres"] = ["indie", "shoegaze"]
    multi["artists"][2]["followers"] = {"href": None, "total": 1234}
    # An artist credited on an album (earlier in the playlist) and on a track (later), described
    # differently: the track credit describes the artist (songs' credits come first).
    album_credit = track("album-credit")
    album_credit["album"]["artists"] = [dict(artist("shared"), name="Shared (as album artist)")]
    album_credit["artists"][0]["genres"] = None  # JSON null: genres must be NULL, not the text 'null'
    track_credit = track("track-credit")
    track_credit["artists"] = [artist("shared")]
    dated = []
    for label, (release, precision) in RELEASES.items():
        t = track(f"release-{label}")
        t["album"]["release_date"], t["album"]["release_date_precision"] = release, precision
        dated.append(row(t))
    no_uri = track("no-uri")
    no_uri["uri"] = None
    no_uri["artists"] = []
    null_artists = track("null-artists")
    null_artists["artists"] = None
    local = track("local")
    local["id"], local["is_local"], local["uri"] = None, True, "spotify:local:a:b:c:1"
    episode = {"type": "episode", "id": spotify_id("episode"), "name": "An episode", "uri": "spotify:episode:x"}
    chapter = dict(track("chapter"), type="chapter")
    no_id = dict(track("no-id"), id=None)
    empty_id = dict(track("empty-id"), id="")
    old_shape = row(None)
    old_shape["track"] = track("old-shape")
    old_shape.pop("item")
    both_shapes = row(None)
    both_shapes["track"] = track("track-when-item-is-null")
    local_row = row(track("local-flag-on-row"))
    local_row["is_local"] = True
    undated = row(track("undated"))
    undated["added_at"], undated["added_by"] = None, None
    bad_timestamp = row(track("bad-timestamp"), added_at="not a timestamp")
    items = [
        row(multi, added_at="2026-11-21T10:00:00Z"),
        row(None),
        row(local),
        row(episode),
        row(chapter),
        row(no_id),
        row(empty_id),
        old_shape,
        both_shapes,
        local_row,
        undated,
        bad_timestamp,
        row(no_uri),
        row(null_artists),
        row(album_credit),
        row(track_credit),
        row(track("conflict", popularity=61)),
        *dated,
        row(multi, added_at="2026-11-20T09:30:00+02:00"),  # listed twice: two rows, earliest added_at wins
    ]
    # A track in another playlist, described differently: first seen wins in both
    # implementations when the documents are given in playlist_id order ('other' < 'edge').
    other = document(start, "other", [row(track("conflict", popularity=5, artists=2), added_at="2026-11-19T00:00:00Z")])
    failed = document(
        start, "failed", [], status="failed",
        extraction={"total": None, "extracted_at": "2026-11-21T16:00:02Z", "error": {"kind": "forbidden", "message": "no access"}},
    )
    return [document(start, "edge", items), other, failed]


def file_name(doc: dict[str, Any], version: str) -> str:
    return f"window={window_slug(doc['window']['partition_key'])}/v={version}/{doc['playlist_id']}.json"


def insert_documents(cur: Any, docs: list[tuple[dict[str, Any], str, str]]) -> None:
    """(document, file name, loaded_at) rows into the raw table, as the pipe would load them."""
    insert_into(cur, "RAW.PLAYLIST_SNAPSHOTS", docs)


def insert_into(cur: Any, table: str, docs: list[tuple[dict[str, Any], str, str]]) -> None:
    # One statement per document: the connector's executemany only batches INSERT ... VALUES,
    # and PARSE_JSON needs INSERT ... SELECT.
    for d, name, loaded_at in docs:
        cur.execute(
            f"INSERT INTO {table} (document, file_name, loaded_at) SELECT PARSE_JSON(%s), %s, %s",
            (orjson.dumps(d).decode(), name, loaded_at),
        )


@pytest.fixture(scope="module")
def documents() -> dict[datetime, list[dict[str, Any]]]:
    """Two windows: W1 has sample playlists plus every edge case, W2 a sample playlist."""
    return {W1: sample_documents(W1, slice(0, 3)) + edge_documents(W1), W2: sample_documents(W2, slice(1, 2))}


def prepared_warehouse(server: dict, database: str, statements: list[Statement]) -> Any:
    """A cursor on fakesnow after setup.sql and snowpipe.sql ran (what fakesnow can run of
    them), with the database renamed where an operator renames it: `SET db`."""
    import snowflake.connector

    conn = snowflake.connector.connect(**connection_args(server, database))
    cur = conn.cursor()
    for statement in statements:
        if statement.kind not in EXECUTED:
            continue
        text = statement.text
        if statement.kind == "SET" and re.match(r"SET\s+db\s*=", text, re.I):
            text = f"SET db = '{database}'"
        cur.execute(text)
    use_ordered_flatten(database)
    return cur


@pytest.fixture(scope="module")
def loaded(fakesnow_server: dict, setup_statements: list[Statement], snowpipe_statements: list[Statement], documents: dict[datetime, list[dict[str, Any]]]) -> Iterator[Any]:
    """One database for the read-only tests: scripts run, every document loaded, plus an OLDER
    version of one W1 playlist loaded LAST (as when Snowpipe catches up late), which must not
    count: the newest version does."""
    database = f"TEST_{uuid.uuid4().hex[:10].upper()}"
    cur = prepared_warehouse(fakesnow_server, database, [*setup_statements, *snowpipe_statements])
    rows = []
    for docs in documents.values():
        rows += [(d, file_name(d, "20261121T160003000000Z-new"), "2026-11-21 16:05:00") for d in docs]
    stale = orjson.loads(orjson.dumps(documents[W1][0]))
    stale["items"] = stale["items"][:3]
    stale["playlist"]["name"] = "stale version"
    rows.append((stale, file_name(stale, "20261121T160001000000Z-old"), "2026-11-21 17:00:00"))
    insert_documents(cur, rows)
    yield cur
    cur.connection.close()


@pytest.fixture
def warehouse(fakesnow_server: dict, snowflake_database: str, setup_statements: list[Statement], snowpipe_statements: list[Statement]) -> Iterator[Any]:
    """A fresh database with the scripts run and nothing loaded."""
    cur = prepared_warehouse(fakesnow_server, snowflake_database, [*setup_statements, *snowpipe_statements])
    yield cur
    cur.connection.close()


@pytest.mark.slow
def test_setup_creates_the_database_and_both_schemas(loaded: Any) -> None:
    loaded.execute("SELECT CURRENT_DATABASE()")
    [(database,)] = loaded.fetchall()
    loaded.execute(f"SHOW SCHEMAS IN DATABASE {database}")
    assert {"ANALYTICS", "RAW"} <= {r[1].upper() for r in loaded.fetchall()}
    loaded.execute(f"SHOW TABLES IN SCHEMA {database}.ANALYTICS")
    assert {r[1].upper() for r in loaded.fetchall()} == {n.upper() for n in TABLES}


def read(cur: Any, relation: str, name: str) -> pd.DataFrame:
    """A relation's rows as a frame of `name`'s declared columns and dtypes.

    fakesnow's wire format loses NULL in timestamp columns (it sends 1970-01-01: its
    timestamp_to_sf_struct builds the struct without the null mask), so each timestamp column
    is read with an IS NULL flag and the flag wins.
    """
    table = TABLES[name]
    stamps = [c.name for c in table.columns if c.type == "timestamp"]
    flags = "".join(f", ({c} IS NULL) AS {c}__is_null" for c in stamps)
    cur.execute(f"SELECT *{flags} FROM {relation}")
    frame = pd.DataFrame(cur.fetchall(), columns=[d[0].lower() for d in cur.description])
    for c in stamps:
        frame[c] = frame[c].where(~frame.pop(f"{c}__is_null").astype(bool), None)
    return table.conform(frame)


def records(frame: pd.DataFrame, name: str) -> list[tuple]:
    """Sorted rows with plain Python values: NA -> None, timestamps as UTC instants."""
    out = []
    for values in frame.astype(object).itertuples(index=False):
        rec = []
        for v in values:
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
                rec.append(None)
            elif isinstance(v, pd.Timestamp):
                rec.append(v.tz_convert("UTC") if v.tzinfo else v)
            elif hasattr(v, "item"):
                rec.append(v.item())
            else:
                rec.append(v)
        out.append(tuple(rec))
    cols = list(frame.columns)
    key = [cols.index(k) for k in ("window_start", *TABLES[name].key)]
    return sorted(out, key=lambda r: tuple(str(r[i]) for i in key))


def expected(documents: dict[datetime, list[dict[str, Any]]], name: str) -> list[tuple]:
    frames = []
    for start, docs in documents.items():
        ordered = sorted(docs, key=lambda d: d["playlist_id"])  # the SQL's first-seen order
        frames.append(normalize_documents(start, ordered).frames[name])
    return records(pd.concat(frames, ignore_index=True), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TABLES))
def test_flatten_views_equal_the_python_normalizer(loaded: Any, documents: dict[datetime, list[dict[str, Any]]], name: str) -> None:
    got = records(read(loaded, f"RAW.V_{name.upper()}", name), name)
    want = expected(documents, name)
    assert len(got) == len(want) and got == want


def test_the_edge_cases_are_in_the_compared_data(documents: dict[datetime, list[dict[str, Any]]]) -> None:
    """The comparison above proves little if the data lacks the cases: check they are there."""
    window = normalize_documents(W1, sorted(documents[W1], key=lambda d: d["playlist_id"])).frames
    playlists = window["playlists"].set_index("name")
    edge = playlists.loc["Edge edge"]
    assert (edge.unavailable_rows, edge.local_rows, edge.episode_rows, edge.other_rows, edge.repeated_song_rows) == (1, 2, 1, 3, 1)
    assert playlists.loc["Edge failed"].status == "failed" and pd.isna(playlists.loc["Edge failed"].song_rows)
    albums = window["albums"]
    assert {"year", "month", "day", None} <= set(albums.release_date_precision.replace({pd.NA: None}).astype(object))
    assert albums.release_year.isna().sum() >= 2  # '0000' and an unparseable date
    songs, credits = window["songs"].set_index("song_id"), window["song_artists"]
    multi_id = spotify_id("track:multi")
    multi = songs.loc[multi_id]
    assert (multi.artist_count, multi.playlist_appearances) == (3, 2)  # three credits, one without an id
    assert list(credits[credits.song_id == multi_id].artist_position) == [0, 1]
    assert multi.artist_id != albums.set_index("album_id").loc[multi.album_id].artist_id
    conflict = songs.loc[spotify_id("track:conflict")]
    assert spotify_id("playlist:other") < spotify_id("playlist:edge")  # 'other' is seen first
    assert (conflict.popularity, conflict.artist_count, conflict.playlist_appearances) == (5, 2, 2)
    artists = window["artists"].set_index("artist_id")
    assert artists.loc[spotify_id("artist:shared"), "name"] == "shared"
    assert artists.genres.notna().any() and artists.followers.notna().any()
    assert songs.loc[spotify_id("track:null-artists")].artist_count == 0
    assert window["playlist_tracks"].added_at.isna().sum() >= 2  # null, and not a timestamp
    # The same playlist in both windows: rows must stay in their own window.
    assert documents[W2][0]["playlist_id"] in {d["playlist_id"] for d in documents[W1]}


def test_release_periods_never_invent_a_day(loaded: Any) -> None:
    """Spelled out for the cases the comparison covers, so a wrong expectation in normalize.py
    would not make both sides agree on a wrong answer unnoticed."""
    ids = ", ".join(f"'{spotify_id(f'album:release-{label}')}'" for label in RELEASES)
    loaded.execute(
        "SELECT release_date, release_year, release_period_start, release_period_end FROM RAW.V_ALBUMS "
        f"WHERE window_start = '{iso_z(W1)}'::TIMESTAMP_TZ AND album_id IN ({ids})"
    )
    got = {r[0]: (r[1], str(r[2]) if r[2] else None, str(r[3]) if r[3] else None) for r in loaded.fetchall()}
    assert len(got) == len(RELEASES)
    assert got["1999"] == (1999, "1999-01-01", "1999-12-31")
    assert got["2002-05"] == (2002, "2002-05-01", "2002-05-31")
    assert got["2004-02-29"] == (2004, "2004-02-29", "2004-02-29")
    assert got["0000"] == (None, None, None)
    assert got["2002-02-30"] == (2002, "2002-01-01", "2002-12-31")
    assert got["2003-07-01"] == (2003, "2003-01-01", "2003-12-31")
    assert got["2002-13"] == (2002, "2002-01-01", "2002-12-31")
    assert got["2005-11"] == (2005, "2005-11-01", "2005-11-30")
    assert got["soon"] == (None, None, None)


def run_procedure_transaction(cur: Any, statements: list[Statement], new_documents: list[tuple[dict[str, Any], str, str]]) -> None:
    """What one task run does, on fakesnow: the stream (a plain table here) holds the newly
    loaded documents, and the procedure's transaction runs as written."""
    insert_documents(cur, new_documents)
    cur.execute("CREATE OR REPLACE TABLE RAW.PLAYLIST_SNAPSHOTS_CHANGES AS SELECT * FROM RAW.PLAYLIST_SNAPSHOTS WHERE 1 = 0")
    insert_into(cur, "RAW.PLAYLIST_SNAPSHOTS_CHANGES", new_documents)
    cur.execute("BEGIN TRANSACTION")
    for text in procedure_transaction(statements):
        cur.execute(text)
    cur.execute("COMMIT")


def analytics(cur: Any) -> dict[str, list[tuple]]:
    return {name: records(read(cur, f"ANALYTICS.{name.upper()}", name), name) for name in TABLES}


@pytest.mark.slow
def test_the_task_replaces_only_the_windows_that_received_documents(
    warehouse: Any, documents: dict[datetime, list[dict[str, Any]]], snowpipe_statements: list[Statement]
) -> None:
    documents = {W1: documents[W1][1:], W2: documents[W2]}  # fewer rows: three runs below
    first = [(d, file_name(d, "20261121T160003000000Z-a"), "2026-11-21 16:05:00") for docs in documents.values() for d in docs]
    run_procedure_transaction(warehouse, snowpipe_statements, first)
    assert analytics(warehouse) == {name: expected(documents, name) for name in TABLES}
    warehouse.execute("SELECT COUNT(*) FROM RAW.PENDING_WINDOWS")
    assert warehouse.fetchone()[0] == 0

    # W1 is re-materialized: a new version of one playlist (a row fewer, renamed) arrives.
    # W1 is rebuilt from the documents that now count; W2 is not touched (its rows are marked
    # first: a rebuild of W2 would give the same rows, but without the marks).
    w2 = f"window_start = '{iso_z(W2)}'::TIMESTAMP_TZ"
    warehouse.execute(f"UPDATE ANALYTICS.PLAYLISTS SET description = 'untouched' WHERE {w2}")
    warehouse.execute(f"UPDATE ANALYTICS.SONGS SET name = 'untouched' WHERE {w2}")
    before = analytics(warehouse)
    rewritten = orjson.loads(orjson.dumps(documents[W1][0]))
    rewritten["items"] = rewritten["items"][1:]
    rewritten["playlist"]["name"] = "renamed"
    now = {W1: [rewritten, *documents[W1][1:]], W2: documents[W2]}
    newer = file_name(rewritten, "20261122T000000000000Z-b")
    run_procedure_transaction(warehouse, snowpipe_statements, [(rewritten, newer, "2026-11-22 00:05:00")])
    after = analytics(warehouse)
    assert after["playlists"] != before["playlists"]
    for name in TABLES:
        assert [r for r in after[name] if r[0] == W1] == [r for r in expected(now, name) if r[0] == W1]
        assert [r for r in after[name] if r[0] == W2] == [r for r in before[name] if r[0] == W2]
    warehouse.execute(f"SELECT COUNT(*) FROM ANALYTICS.SONGS WHERE {w2} AND name = 'untouched'")
    assert warehouse.fetchone()[0] == len([r for r in after["songs"] if r[0] == W2]) > 0

    # A run that finds the same window again (a late duplicate of a file) changes nothing.
    run_procedure_transaction(warehouse, snowpipe_statements, [(rewritten, newer, "2026-11-22 00:06:00")])
    assert analytics(warehouse) == after
