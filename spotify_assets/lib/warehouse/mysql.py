"""The MySQL target (RDS MySQL, Aurora MySQL, MariaDB), through PyMySQL (imported when a
connection opens) behind a SQLAlchemy URL.

A MySQL "schema" is a database: tables are `<database>.<table>`. Every table is InnoDB,
utf8mb4 with the binary collation (`utf8mb4_bin`: names in any script survive, and strings
compare, group and sort by code point as they do in DuckDB and Snowflake). Instants are
`DATETIME(6)` holding UTC: every session runs with `time_zone = '+00:00'`, and reads return
them as UTC-aware timestamps (`TIMESTAMP` would stop at 2038). Each declared table has an
index on (window_start, key) (on the key for the unwindowed tables), which makes a
window's delete, the quality checks and the views' joins on (id, window_start) index lookups.

A write is one InnoDB transaction: DELETE the window (or the rows selected), LOAD DATA LOCAL
INFILE the new rows (the bulk path; a multi-row INSERT where the server refuses LOCAL), COMMIT;
on any error ROLLBACK. DDL commits implicitly in MySQL, so every CREATE/ALTER happens before
the transaction opens, as in Snowflake. See `base.py` for the contract.

SQL is written once for every target (`sql/`, the quality checks) in the dialect DuckDB and
Snowflake share; `to_mysql` renders it in MySQL's with sqlglot, typed by the declared tables
and the views, so that date arithmetic (`date + 1`, `date - date`) keeps its meaning.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES, PARTITION_COLUMN, Column, Table
from spotify_assets.lib.warehouse.base import (
    AppendFill,
    AppendResult,
    Dialect,
    WarehouseClient,
    WriteResult,
    lower_case,
    not_present,
    render,
)
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy("numpy")
    pd = lazy("pandas")

CHARSET = "utf8mb4"
COLLATION = "utf8mb4_bin"
TABLE_OPTIONS = f"ENGINE=InnoDB DEFAULT CHARSET={CHARSET} COLLATE={COLLATION}"
# What a MySQL session of this project sets first (see `session_statements`).
SESSION_TIME_ZONE = "+00:00"

# String columns that are keys or ids (indexed, joined on): VARCHAR; other strings: TEXT.
KEY_LENGTH = 255
LONG_KEYS = {"source_file": 1024}  # a path: indexed by its first INDEX_PREFIX characters
INDEX_PREFIX = 191

_DTYPE_TYPES = {
    "object": "TEXT",
    "string": "TEXT",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INT",
    "int64": "BIGINT",
    "Int8": "TINYINT",
    "Int16": "SMALLINT",
    "Int32": "INT",
    "Int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "Float64": "DOUBLE",
}


@dataclass(frozen=True)
class MySQLDialect(Dialect):
    """MySQL's types, its naive-UTC instants, and tables created with their indexes."""

    def sql_type(self, column: Column) -> str:
        if column.type == "string" and _is_indexed_string(column.name):
            return f"VARCHAR({LONG_KEYS.get(column.name, KEY_LENGTH)})"
        return self.column_types[column.type]

    def timestamp(self, literal: str) -> str:
        # `Window.literals()` spells UTC as +00:00; a DATETIME holds the UTC wall clock
        return f"CAST('{literal.removesuffix('+00:00')}' AS DATETIME(6))"

    def create_table(self, table: Table, qualified_name: str) -> str:
        cols = [f"    {c.name} {self.sql_type(c)}{'' if c.nullable else ' NOT NULL'}" for c in table.columns]
        indexed = ([PARTITION_COLUMN] if table.columns[0].name == PARTITION_COLUMN else []) + list(table.key)
        parts = ", ".join(f"{n}({INDEX_PREFIX})" if LONG_KEYS.get(n, 0) > KEY_LENGTH else n for n in indexed)
        cols.append(f"    INDEX {table.name}_window_key ({parts})")
        return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n" + ",\n".join(cols) + f"\n) {TABLE_OPTIONS}"


def _is_indexed_string(name: str) -> bool:
    in_a_key = any(name in t.key for t in DECLARED_TABLES.values())
    return in_a_key or name.endswith("_id") or name in LONG_KEYS


DIALECT = MySQLDialect(
    name="mysql",
    column_types={
        "string": "TEXT",
        "int": "INT",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
        "date": "DATE",
        "timestamp": "DATETIME(6)",
    },
    timestamp_type="DATETIME(6)",
    dtype_sql=_DTYPE_TYPES,
    aware_datetime_type="DATETIME(6)",
    naive_datetime_type="DATETIME(6)",
)


def session_statements() -> list[str]:
    """Run on every new connection: UTC, utf8mb4 with the binary collation, strict mode."""
    return [
        f"SET time_zone = '{SESSION_TIME_ZONE}'",
        f"SET NAMES {CHARSET} COLLATE {COLLATION}",
        "SET SESSION sql_mode = IF(@@SESSION.sql_mode = '', 'STRICT_TRANS_TABLES', "
        "CONCAT(@@SESSION.sql_mode, ',STRICT_TRANS_TABLES'))",
    ]


# --- SQL written once, rendered in MySQL's dialect --------------------------------------------

_SQL_TYPES = {"string": "VARCHAR", "int": "INT", "bigint": "BIGINT", "bool": "BOOLEAN", "double": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMPTZ"}
VIEWS_DIR = Path(__file__).resolve().parents[3] / "sql" / "views"


@functools.cache
def known_columns() -> dict[str, dict[str, str]]:
    """Every declared table's and every view's (`sql/views/`) columns with their types (in
    sqlglot's DuckDB spelling): what `to_mysql` types expressions by. A view's are inferred
    from its SQL, in the order the views read each other."""
    columns = {name: {c.name: _SQL_TYPES[c.type] for c in t.columns} for name, t in DECLARED_TABLES.items()}
    pending = {p.stem: p.read_text(encoding="utf-8") for p in sorted(VIEWS_DIR.glob("*.sql"))}
    while pending:
        progressed = False
        for name, sql in list(pending.items()):
            refs = set(re.findall(r"\{schema\}\.(\w+)", sql)) - {name}
            if refs - set(columns):
                continue
            typed = _typed_select(render(sql, "s", recent_release_days=1), {"s": columns})
            if typed is not None:
                columns[name] = {s.alias_or_name: _type_name(s) for s in typed.selects}
            del pending[name]
            progressed = True
        if not progressed:  # a view reads something neither a table nor a view: leave it untyped
            break
    return columns


def _type_name(expression: Any) -> str:
    from sqlglot import exp

    kind = expression.type
    return "VARCHAR" if kind is None or kind.this == exp.DataType.Type.UNKNOWN else kind.sql("duckdb")


def _typed_select(sql: str, schema: Mapping[str, Mapping[str, Mapping[str, str]]]) -> Any:
    """The query of `sql` (a CREATE VIEW's too), qualified and typed; None when sqlglot cannot."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        query = tree.expression if isinstance(tree, exp.Create) else tree
        query = qualify(query, schema=schema, dialect="duckdb", quote_identifiers=False, identify=False)
        return annotate_types(query, schema=schema)
    except Exception:
        return None


RENDERED = "/* rendered for MySQL */\n"


def to_mysql(sql: str, schema: str) -> str:
    """`sql` (DuckDB's and Snowflake's common dialect, schema already rendered as `schema`)
    in MySQL's: types by `known_columns`, so `date ± n` becomes DATE_ADD/DATE_SUB and `date -
    date` DATEDIFF; division in floating point (as DuckDB's `/`); SPLIT_PART, DATE_TRUNC and
    the NULLS FIRST/LAST orderings spelled as MySQL can."""
    import sqlglot
    from sqlglot import exp

    if sql.startswith(RENDERED):
        return sql
    statements = []
    for tree in sqlglot.parse(sql, read="duckdb"):
        if tree is None:
            continue
        if isinstance(tree, (exp.Select, exp.Union, exp.Create, exp.Subquery)) or tree.find(exp.Select):
            tree = _rewrite(tree, schema)
        statements.append(tree.sql(dialect="mysql", unsupported_level=sqlglot.ErrorLevel.RAISE))
    return RENDERED + ";\n".join(statements)


def _rewrite(tree: Any, schema: str) -> Any:
    from sqlglot import exp

    query = tree.expression if isinstance(tree, exp.Create) else tree
    typed = _typed_select(query.sql("duckdb"), {schema: known_columns()})
    if typed is not None:
        query = typed
    query = query.transform(_mysql_node)
    if isinstance(tree, exp.Create):
        tree.set("expression", query)
        return tree
    return query


def _mysql_node(node: Any) -> Any:
    """One node in MySQL's terms. A replaced node's children are not visited by `transform`:
    each is rewritten here (`_sub`) before it goes into the new node."""
    from sqlglot import exp

    if isinstance(node, (exp.Add, exp.Sub)) and _is_date(node.left):
        if isinstance(node, exp.Sub) and _is_date(node.right):
            return exp.DateDiff(this=_sub(node.left), expression=_sub(node.right), unit=exp.var("DAY"))
        if node.right.type is not None and node.right.type.is_type(*exp.DataType.INTEGER_TYPES):
            kind = exp.DateAdd if isinstance(node, exp.Add) else exp.DateSub
            return kind(this=_sub(node.left), expression=_sub(node.right), unit=exp.var("DAY"))
    if isinstance(node, exp.Div) and not node.args.get("mysql_float"):
        # DuckDB's `/` divides in floating point; MySQL's gives a DECIMAL of 4 more places
        floated = exp.Mul(this=exp.Paren(this=_sub(node.this)), expression=exp.Literal.number("1E0"))
        divided = exp.Div(this=floated, expression=_sub(node.expression))
        divided.set("mysql_float", True)
        return divided
    if isinstance(node, exp.SplitPart):
        # the n-th element (n at most the element count, as the views use it)
        text, delimiter, n = _sub(node.this), _sub(node.args["delimiter"]), _sub(node.args["part_index"])
        first_n = exp.func("SUBSTRING_INDEX", text, delimiter, n)
        return exp.func("SUBSTRING_INDEX", first_n, delimiter.copy(), exp.Literal.number(-1))
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)) and node.text("unit").upper() == "MONTH":
        month = exp.func("DATE_FORMAT", _sub(node.this), exp.Literal.string("%Y-%m-01"))
        return exp.Cast(this=month, to=exp.DataType.build("DATE"))
    if isinstance(node, exp.Ordered) and isinstance(node.this, exp.Column) and node.this.name == PARTITION_COLUMN:
        # never null: MySQL's own null ordering is as good, and a window frame accepts no other
        node.set("nulls_first", not node.args.get("desc"))
    return node


def _sub(expression: Any) -> Any:
    return expression.copy().transform(_mysql_node)


def _is_date(expression: Any) -> bool:
    """Whether `expression` is a date in DuckDB's arithmetic (sqlglot types `date - date` as a
    date; it is a number of days)."""
    from sqlglot import exp

    while isinstance(expression, exp.Paren):
        expression = expression.this
    if isinstance(expression, exp.Sub) and _is_date(expression.left):
        return not _is_date(expression.right)
    if isinstance(expression, exp.Add) and _is_date(expression.left):
        return True
    return expression.type is not None and expression.type.this == exp.DataType.Type.DATE


# --- connections --------------------------------------------------------------------------


def connect_pymysql(url: str, *, ssl_ca: str | None = None, connect_timeout: float = 10.0) -> Any:
    """A PyMySQL connection for a SQLAlchemy URL (`mysql+pymysql://user:password@host:port/`),
    with LOCAL INFILE allowed, TLS verified against `ssl_ca` when given, and the session set up
    (`session_statements`)."""
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    args: dict[str, Any] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 3306,
        "user": parsed.username or "",
        "password": parsed.password or "",
        "charset": CHARSET,
        "local_infile": True,
        "autocommit": True,
        "connect_timeout": connect_timeout,
    }
    socket = parsed.query.get("unix_socket")
    if socket:
        args["unix_socket"] = socket
    if ssl_ca:
        args["ssl_ca"] = ssl_ca
        args["ssl_verify_cert"] = True
        args["ssl_verify_identity"] = True
    conn = pymysql.connect(**args)
    with conn.cursor() as cur:
        for statement in session_statements():
            cur.execute(statement)
    return conn


@contextmanager
def transaction(cur: Any) -> Iterator[None]:
    cur.execute("START TRANSACTION")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


# --- moving rows --------------------------------------------------------------------------

_NULL = "\\N"


def _text_column(series: pd.Series) -> np.ndarray:
    """One column as LOAD DATA's default format reads it (backslash escapes, \\N for null,
    instants as their naive UTC wall clock), formatted by numpy and pandas, not row by row."""
    dtype = str(series.dtype)
    isna = series.isna().to_numpy()
    if dtype.startswith("datetime64"):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if "," in dtype else series
        values = naive.to_numpy("datetime64[us]")
        days = values.astype("datetime64[D]")
        unit = "D" if bool((values[~isna] == days[~isna]).all()) else "us"
        text = np.datetime_as_string(days if unit == "D" else values, unit=unit).astype(object)
    elif dtype in ("bool", "boolean"):
        text = np.where(series.fillna(False).to_numpy(dtype=bool), "1", "0").astype(object)
    elif dtype.lower().startswith(("int", "uint")):
        text = series.fillna(0).to_numpy(dtype="int64").astype(str).astype(object)
    elif dtype.lower().startswith("float"):
        text = series.to_numpy(dtype="float64", na_value=np.nan).astype(str).astype(object)
    elif isna.all():
        text = np.full(len(series), _NULL, dtype=object)
    else:
        strings = series.where(~isna, "")
        if not all(isinstance(v, str) for v in strings):
            strings = strings.map(_escape)
        else:
            strings = strings.astype(str)
            if strings.str.contains(r"[\\\t\n\r\x00]", regex=True).any():
                for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0")):
                    strings = strings.str.replace(raw, escaped, regex=False)
        text = strings.to_numpy(dtype=object)
    text[isna] = _NULL
    return text


def _escape(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return _NULL
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        value = pd.Timestamp(value)
        return str(value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text or "\0" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    return text


def _python(value: Any) -> Any:
    """A frame value as PyMySQL escapes it (an instant as its naive UTC wall clock)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return (value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value).to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def load_data_infile(cur: Any, qualified: str, frame: pd.DataFrame) -> None:
    """Append `frame`'s rows to `qualified` with LOAD DATA LOCAL INFILE (in the caller's
    transaction: on InnoDB a ROLLBACK takes them back)."""
    if frame.empty:
        return
    text = pd.DataFrame({str(c): _text_column(frame[c]) for c in frame.columns})
    fd, path = tempfile.mkstemp(prefix="spotify-assets-load-", suffix=".tsv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            # every field is escaped already: no quoting, no further escaping
            text.to_csv(out, sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
        names = ", ".join(str(c) for c in frame.columns)
        cur.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {qualified} CHARACTER SET {CHARSET} "
            f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({names})",
            (path,),
        )
        loaded = cur.rowcount
        cur.execute("SHOW WARNINGS LIMIT 5")
        warnings = [w for w in cur.fetchall() if str(w[0]) != "Note"]
        if loaded != len(frame) or warnings:
            raise RuntimeError(f"LOAD DATA into {qualified} loaded {loaded} of {len(frame)} rows: {warnings}")
    finally:
        os.unlink(path)


def insert_rows(cur: Any, qualified: str, frame: pd.DataFrame) -> None:
    """Append `frame`'s rows by INSERT (PyMySQL sends multi-row statements of about 1 MB):
    where the server does not allow LOAD DATA LOCAL."""
    if frame.empty:
        return
    names = ", ".join(str(c) for c in frame.columns)
    placeholders = ", ".join(["%s"] * len(frame.columns))
    rows = [tuple(_python(v) for v in row) for row in frame.itertuples(index=False, name=None)]
    cur.executemany(f"INSERT INTO {qualified} ({names}) VALUES ({placeholders})", rows)


LoadFn = Callable[[Any, str, "pd.DataFrame"], None]
_LOCAL_REFUSED = {1148, 2068, 3948}  # the server (or client) does not allow LOAD DATA LOCAL


def load_rows(cur: Any, qualified: str, frame: pd.DataFrame) -> None:
    """LOAD DATA LOCAL INFILE, or INSERT where the server refuses LOCAL."""
    import pymysql

    try:
        load_data_infile(cur, qualified, frame)
    except pymysql.err.OperationalError as err:
        if err.args and err.args[0] in _LOCAL_REFUSED:
            insert_rows(cur, qualified, frame)
        else:
            raise


def _count(cur: Any, qualified: str) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {qualified}")
    return int(cur.fetchone()[0])


# --- the client ---------------------------------------------------------------------------


class MySQLClient(WarehouseClient):
    """One MySQL database. `connect()` opens a PyMySQL connection (session set up, autocommit
    on); `load` appends a frame's rows inside the open transaction."""

    dialect = DIALECT

    def __init__(self, connect: Callable[[], Any], database: str, load: LoadFn = load_rows):
        self.connect = connect
        self.database = database
        self.schema_ref = database
        self.load = load

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def render(self, sql: str, **values: object) -> str:
        return to_mysql(render(sql, self.schema_ref, **values), self.schema_ref)

    def ensure_database(self, cur: Any) -> None:
        """Create the database only when missing: the pipeline's user need not have the
        CREATE privilege on the server once setup.sql has run."""
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (self.database,))
        if not cur.fetchone()[0]:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database} CHARACTER SET {CHARSET} COLLATE {COLLATION}")

    def execute(self, statements: list[str]) -> None:
        # CREATE VIEW and CREATE TABLE are DDL: MySQL commits each one by itself.
        with self.cursor() as cur:
            self.ensure_database(cur)
            for statement in statements:  # as given: `render` has rendered the project's SQL
                cur.execute(statement)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        with self.cursor() as cur:
            yield lambda sql: fetch(cur, _mysql(sql, self.schema_ref))

    def _prepare(self, cur: Any, table: str, frame: pd.DataFrame, window: Window | None) -> tuple[str, pd.DataFrame, bool]:
        """DDL before the transaction: the table exists afterwards. Returns (qualified, the
        frame as written, whether an undeclared whole table is to be swapped in by rename)."""
        spec = DECLARED_TABLES.get(table)
        qualified = f"{self.database}.{table}"
        if spec is not None:
            cur.execute(DIALECT.create_table(spec, qualified))
            return qualified, spec.conform(frame), False
        cur.execute(f"CREATE TABLE IF NOT EXISTS {qualified} ({_frame_columns(frame)}) {TABLE_OPTIONS}")
        return qualified, frame, window is None

    def replace(self, table: str, frame: pd.DataFrame, window: Window | None, *, where: str | None = None) -> WriteResult:
        if table not in DECLARED_TABLES and window is None and where is None:
            return self._swap_whole(table, frame)
        return self._replace({table: frame}, window, where)[table]

    def replace_window(self, frames: Mapping[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        return self._replace(frames, window, None)

    def _replace(self, frames: Mapping[str, pd.DataFrame], window: Window | None, where: str | None) -> dict[str, WriteResult]:
        with self.cursor() as cur:
            self.ensure_database(cur)
            prepared = [(table, *self._prepare(cur, table, frame, window)[:2]) for table, frame in frames.items()]
            selected = f" WHERE {_mysql_condition(where, self.schema_ref)}" if where is not None else DIALECT.where_window(window)
            results: dict[str, WriteResult] = {}
            with transaction(cur):
                for table, qualified, frame in prepared:
                    cur.execute(f"DELETE FROM {qualified}{selected}")
                    replaced = int(cur.rowcount)
                    self.load(cur, qualified, frame)
                    results[table] = WriteResult(replaced, _count(cur, qualified))
            return results

    def _swap_whole(self, table: str, frame: pd.DataFrame) -> WriteResult:
        """An undeclared table written whole takes the frame's columns: a new table is filled,
        then RENAME TABLE swaps it in (atomic for readers) and the old one is dropped."""
        qualified = f"{self.database}.{table}"
        fresh, old = f"{qualified}__new", f"{qualified}__old"
        with self.cursor() as cur:
            self.ensure_database(cur)
            cur.execute(f"DROP TABLE IF EXISTS {fresh}, {old}")
            cur.execute(f"CREATE TABLE {fresh} ({_frame_columns(frame)}) {TABLE_OPTIONS}")
            try:
                with transaction(cur):
                    self.load(cur, fresh, frame)
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (self.database, table),
                )
                replaced = 0
                if cur.fetchone()[0]:
                    replaced = _count(cur, qualified)
                    cur.execute(f"RENAME TABLE {qualified} TO {old}, {fresh} TO {qualified}")
                    cur.execute(f"DROP TABLE {old}")
                else:
                    cur.execute(f"RENAME TABLE {fresh} TO {qualified}")
            finally:
                cur.execute(f"DROP TABLE IF EXISTS {fresh}")
            return WriteResult(replaced, _count(cur, qualified))

    def append_new(self, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None) -> dict[str, AppendResult]:
        """Each frame goes to a temporary table first (CREATE TEMPORARY TABLE does not commit),
        then ONE transaction inserts the rows whose key is not in each table yet."""
        with self.cursor() as cur:
            self.ensure_database(cur)
            staged: list[tuple[str, str, str]] = []
            for n, (table, frame) in enumerate(frames.items()):
                spec = DECLARED_TABLES[table]
                qualified = f"{self.database}.{table}"
                cur.execute(DIALECT.create_table(spec, qualified))
                temp = f"{self.database}._append_{n}_{table}"
                cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {temp}")
                cur.execute(f"CREATE TEMPORARY TABLE {temp} LIKE {qualified}")
                staged.append((table, qualified, temp))
            results: dict[str, AppendResult] = {}
            with transaction(cur):
                for (table, qualified, temp), frame in zip(staged, frames.values()):
                    spec = DECLARED_TABLES[table]
                    self.load(cur, temp, spec.conform(frame))
                    if fill and table in fill:
                        column, other = fill[table]
                        cur.execute(f"UPDATE {temp} SET {column} = {int(results[other].rows_added)}")
                    before = _count(cur, qualified)
                    columns = ", ".join(spec.column_names)
                    cur.execute(
                        f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {temp} s "
                        f"WHERE {not_present(qualified, spec.key)}"
                    )
                    after = _count(cur, qualified)
                    results[table] = AppendResult(after - before, after)
            for _, _, temp in staged:
                cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {temp}")
            return results

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        """The missing declared columns are added (DDL, each commits by itself: harmless), then
        ONE transaction replaces every row."""
        spec = DECLARED_TABLES[table]
        qualified = f"{self.database}.{table}"
        frame = spec.conform(frame)
        with self.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (self.database, table),
            )
            present = {str(r[0]).lower() for r in cur.fetchall()}
            for column in spec.columns:
                if column.name not in present:
                    cur.execute(f"ALTER TABLE {qualified} ADD COLUMN {column.name} {DIALECT.sql_type(column)}")
            with transaction(cur):
                cur.execute(f"DELETE FROM {qualified}")
                self.load(cur, qualified, frame)
                return _count(cur, qualified)

    @property
    def catalog(self) -> tuple[str, str]:
        return "information_schema.tables", self.database


def _frame_columns(frame: pd.DataFrame) -> str:
    cols = [f"{c} {DIALECT.dtype_type(t)}" for c, t in frame.dtypes.items()]
    if PARTITION_COLUMN in frame.columns:
        cols.append(f"INDEX ({PARTITION_COLUMN})")
    return ", ".join(cols)


def _mysql(sql: str, schema: str) -> str:
    """A statement in the common dialect, in MySQL's (one already in MySQL's passes unchanged)."""
    try:
        return to_mysql(sql, schema)
    except Exception:
        return sql


def _mysql_condition(where: str, schema: str) -> str:
    rendered = _mysql(f"SELECT 1 FROM t WHERE {where}", schema)
    return rendered.split(" WHERE ", 1)[1] if " WHERE " in rendered else where


def fetch(cur: Any, sql: str) -> pd.DataFrame:
    """One query's rows as a frame: lower-case column names, DATETIME as UTC instants, DATE
    as datetime64, DECIMAL as float."""
    cur.execute(sql)
    names = [str(d[0]) for d in (cur.description or [])]
    frame = pd.DataFrame(list(cur.fetchall()), columns=names)
    for name in frame.columns:
        dtype = str(frame[name].dtype)
        if dtype.startswith("datetime64") and "," not in dtype:
            frame[name] = frame[name].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
            continue
        values = frame[name].dropna()
        if values.empty or dtype != "object":
            continue
        first = values.iloc[0]
        if isinstance(first, datetime):
            frame[name] = pd.to_datetime(frame[name]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        elif isinstance(first, date):
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[s]")
        elif isinstance(first, Decimal):
            frame[name] = pd.to_numeric(frame[name].astype(object).where(frame[name].notna(), None).map(lambda v: None if v is None else float(v)))
    return lower_case(frame)


def database_of(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).database


def client_for(url: str, database: str, *, ssl_ca: str | None = None, load: LoadFn = load_rows) -> MySQLClient:
    """A client of `database` on the server of a SQLAlchemy URL."""
    return MySQLClient(functools.partial(connect_pymysql, url, ssl_ca=ssl_ca), database, load)
