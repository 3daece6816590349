"""The lake target: Apache Iceberg tables (pyiceberg), SQL on Athena or, locally, on DuckDB.

Tables live in an Iceberg catalog: AWS Glue with data on S3 in production, pyiceberg's SQL
catalog on SQLite with data under a local directory otherwise. Every table with `window_start`
is partitioned by it (identity), so a query on one window plans only that window's files.

Writes go through pyiceberg transactions. A window (a table, the rows a condition selects)
is replaced by ONE catalog commit per table: the new data files are written, then one commit
adds ONE snapshot that drops the window's files and adds the new ones (a window is whole
files: the tables are partitioned by it); readers see the state before or after it. A write
that selects rows by an SQL condition goes through pyiceberg's overwrite (a delete and an
append snapshot, still in one commit). A failure before the commit leaves the table as it was
(the written files are orphans, never referenced).

What Iceberg cannot give: a commit that spans tables. Neither pyiceberg's Glue catalog nor its
SQL catalog commits several tables at once, so `replace_window` writes the data files of every
table first and only then commits the tables one after another; a commit that fails is
compensated by rolling the tables already committed back to their previous snapshot. A
process killed between two of those commits leaves some tables at the new window until the
window is run again (the re-run is idempotent). See docs/lake.md.

SQL (views, checks, features, previews) is written once in the project's dialect (DuckDB's,
`sql/`); the Athena engine sends each statement transpiled to Athena's (Trino) dialect with
sqlglot; the local engine keeps each view in that Athena form and runs it transpiled back to
DuckDB, over the lake's tables scanned into an in-memory DuckDB.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES, PARTITION_COLUMN, Table
from spotify_assets.lib.warehouse.base import (
    AppendFill,
    AppendResult,
    Dialect,
    WarehouseClient,
    WriteResult,
    filled,
    lower_case,
)
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
else:
    pd = lazy("pandas")
    pa = lazy("pyarrow")


# The SQL every client receives is the project's (DuckDB's) dialect, so the literal casts are
# DuckDB's; `column_types` are the Iceberg types the tables are created with (as the UI shows
# them and Athena describes them).
DIALECT = Dialect(
    name="iceberg",
    column_types={
        "string": "string",
        "int": "int",
        "bigint": "long",
        "bool": "boolean",
        "double": "double",
        "date": "date",
        "timestamp": "timestamptz",
    },
    timestamp_type="TIMESTAMPTZ",
    dtype_sql={
        "bool": "boolean", "boolean": "boolean", "int8": "int", "int16": "int", "int32": "int", "Int8": "int",
        "Int16": "int", "Int32": "int", "int64": "long", "Int64": "long", "float32": "float", "float64": "double",
        "Float64": "double",
    },
    aware_datetime_type="timestamptz",
    naive_datetime_type="timestamp",
)

# declared column type -> Arrow type of the data files
_ARROW_TYPES: dict[str, Callable[[], Any]] = {
    "string": lambda: pa.large_string(),
    "int": lambda: pa.int32(),
    "bigint": lambda: pa.int64(),
    "bool": lambda: pa.bool_(),
    "double": lambda: pa.float64(),
    "date": lambda: pa.date32(),
    "timestamp": lambda: pa.timestamp("us", tz="UTC"),
}


def to_athena(sql: str) -> str:
    """A statement of the project's dialect (DuckDB's) in Athena's (engine 3, Trino)."""
    import sqlglot

    return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="athena"))


def athena_to_duckdb(sql: str) -> str:
    """The inverse, to run a statement kept in Athena's dialect on DuckDB."""
    import sqlglot

    return ";\n".join(sqlglot.transpile(sql, read="athena", write="duckdb"))


def arrow_schema(spec: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type](), nullable=c.nullable) for c in spec.columns])


def to_arrow(table: str, frame: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """A frame as the Arrow table written to the lake: a declared table's columns with their
    declared types (`schema`: the table's own, for an undeclared one that exists already)."""
    spec = DECLARED_TABLES.get(table)
    if spec is not None:
        frame = spec.conform(frame)
        schema = arrow_schema(spec)
    if schema is None:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        # Iceberg has no nanosecond timestamps before format v3: microseconds, as every table's
        fields = [
            pa.field(f.name, pa.timestamp("us", tz=f.type.tz) if pa.types.is_timestamp(f.type) else f.type) for f in arrow.schema
        ]
        return arrow.cast(pa.schema(fields))
    columns = []
    for field in schema:
        series = frame[field.name] if field.name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if pa.types.is_date32(field.type):
            series = pd.to_datetime(series).dt.date.astype(object).where(series.notna(), None)
        columns.append(pa.array(series, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(columns, schema=schema)


def window_filter(window: Window) -> Any:
    """`window_start` in [start, end), as a pyiceberg expression (it prunes partitions)."""
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

    start, end = (t.astimezone(timezone.utc).isoformat() for t in (window.start, window.end))
    return And(GreaterThanOrEqual(PARTITION_COLUMN, start), LessThan(PARTITION_COLUMN, end))


def row_filter(window: Window | None, where: str | None) -> Any:
    """What a write replaces: a window, the rows an SQL condition selects (pyiceberg's parser:
    comparisons, IN, IS NULL, AND/OR/NOT), or everything."""
    from pyiceberg.expressions import AlwaysTrue, parser

    if where is not None:
        return parser.parse(where)
    return AlwaysTrue() if window is None else window_filter(window)


def _by_window(table: Any) -> bool:
    """Whether `table` is partitioned by `window_start` itself (identity): a window's rows are
    then whole data files."""
    from pyiceberg.transforms import IdentityTransform

    schema = table.schema()
    return any(
        isinstance(f.transform, IdentityTransform) and schema.find_column_name(f.source_id) == PARTITION_COLUMN
        for f in table.spec().fields
    )


@dataclass
class _Staged:
    """A table's write, data files written, not yet committed."""

    name: str
    txn: Any  # its open pyiceberg Transaction
    before: int | None  # the snapshot it replaces (None: the table had none)
    replaced: int


class IcebergClient(WarehouseClient):
    """One namespace of an Iceberg catalog (`load_catalog()` builds it) and the SQL engine
    that runs the statements and queries (`engine(client)`: LocalSqlEngine or AthenaEngine)."""

    dialect = DIALECT

    def __init__(self, load_catalog: Callable[[], Any], namespace: str, engine: Callable[[IcebergClient], SqlEngine]):
        self._load_catalog = load_catalog
        self.namespace = namespace
        self.schema_ref = namespace
        self._catalog_obj: Any = None
        self.engine = engine(self)

    # --- the catalog ---------------------------------------------------------------------

    @property
    def iceberg(self) -> Any:
        """The pyiceberg catalog (made once per client)."""
        if self._catalog_obj is None:
            from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchNamespaceError

            catalog = self._load_catalog()
            try:  # a read first: in production the role may read the Glue database, not create one
                catalog.load_namespace_properties(self.namespace)
            except NoSuchNamespaceError:
                try:
                    catalog.create_namespace(self.namespace)
                except NamespaceAlreadyExistsError:
                    pass
            self._catalog_obj = catalog
        return self._catalog_obj

    def identifier(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def table_names(self) -> list[str]:
        return sorted(ident[-1].lower() for ident in self.iceberg.list_tables(self.namespace))

    def load(self, name: str) -> Any:
        return self.iceberg.load_table(self.identifier(name))

    def ensure_table(self, name: str, schema: pa.Schema | None = None) -> Any:
        """The table, created (partitioned by `window_start` when it has one) when missing."""
        from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

        try:
            return self.load(name)
        except NoSuchTableError:
            pass
        spec = DECLARED_TABLES.get(name)
        if spec is not None:
            schema = arrow_schema(spec)
        assert schema is not None, f"table {name}: not declared, and no frame to take its columns from"
        try:
            table = self.iceberg.create_table(self.identifier(name), schema=schema)
        except TableAlreadyExistsError:  # another process made it meanwhile
            return self.load(name)
        if PARTITION_COLUMN in schema.names:
            from pyiceberg.transforms import IdentityTransform

            with table.update_spec() as update:
                update.add_field(PARTITION_COLUMN, IdentityTransform(), PARTITION_COLUMN)
        return self.load(name)

    # --- writes ----------------------------------------------------------------------------

    def _stage(self, name: str, frame: pd.DataFrame, window: Window | None, where: str | None) -> _Staged:
        spec = DECLARED_TABLES.get(name)
        table = self.ensure_table(name, None if spec is not None else to_arrow(name, frame).schema)
        arrow = to_arrow(name, frame, None if spec is not None else table.schema().as_arrow())
        selected = row_filter(window, where)
        snapshot = table.current_snapshot()
        replaced = table.scan(row_filter=selected).count() if snapshot is not None else 0
        txn = table.transaction()
        # the data files are written here; nothing is visible until txn.commit_transaction()
        if where is None and (window is None or _by_window(table)):
            # The selection is whole files (a window is whole partitions): ONE snapshot that
            # removes them and adds the new ones (pyiceberg's overwrite() would record a
            # delete snapshot and an append snapshot, both in the same commit).
            from pyiceberg.io.pyarrow import _dataframe_to_data_files

            gone = [task.file for task in table.scan(row_filter=selected).plan_files()] if snapshot else []
            with txn.update_snapshot().overwrite() as swap:
                for data_file in gone:
                    swap.delete_data_file(data_file)
                # the selection scopes pyiceberg's conflict check: a concurrent commit that adds
                # or removes files of this window fails this one; another window's (a backfill's
                # parallel runs) does not, and pyiceberg refreshes and retries the commit
                swap.delete_by_predicate(selected)
                if arrow.num_rows:
                    for data_file in _dataframe_to_data_files(
                        table_metadata=txn.table_metadata, write_uuid=swap.commit_uuid, df=arrow, io=table.io
                    ):
                        swap.append_data_file(data_file)
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                txn.overwrite(arrow, overwrite_filter=selected)
        return _Staged(name, txn, snapshot.snapshot_id if snapshot else None, replaced)

    def _commit(self, staged: list[_Staged]) -> dict[str, WriteResult]:
        """Commit each staged table in turn; on a failure, roll back those already committed."""
        done: list[_Staged] = []
        try:
            for s in staged:
                s.txn.commit_transaction()
                done.append(s)
        except BaseException:
            for s in reversed(done):
                _roll_back(self.load(s.name), s.before)
            raise
        results = {}
        for s in staged:
            snapshot = self.load(s.name).current_snapshot()
            total = int(snapshot.summary["total-records"]) if snapshot is not None else 0
            results[s.name] = WriteResult(s.replaced, total)
        return results

    def replace(self, table: str, frame: pd.DataFrame, window: Window | None, *, where: str | None = None) -> WriteResult:
        return self._commit([self._stage(table, frame, window, where)])[table]

    def replace_window(self, frames: Mapping[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        # every table's files are written before the first commit (see the module's docstring)
        return self._commit([self._stage(name, frame, window, None) for name, frame in frames.items()])

    def append_new(self, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None) -> dict[str, AppendResult]:
        results: dict[str, AppendResult] = {}
        for name, frame in frames.items():
            spec = DECLARED_TABLES[name]
            frame = filled(name, frame, fill, results)
            table = self.ensure_table(name)
            present = table.scan(selected_fields=spec.key).to_pandas() if table.current_snapshot() else None
            if present is not None and len(present) and len(frame):
                keys = pd.MultiIndex.from_frame(present[list(spec.key)].astype(object))
                new = ~pd.MultiIndex.from_frame(frame[list(spec.key)].astype(object)).isin(keys)
                frame = frame[new]
            frame = frame.drop_duplicates(subset=list(spec.key))
            if len(frame):
                table.append(to_arrow(name, frame))
            snapshot = self.load(name).current_snapshot()
            results[name] = AppendResult(len(frame), int(snapshot.summary["total-records"]) if snapshot else 0)
        return results

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        """Add the declared columns the table lacks and replace its rows, in ONE commit."""
        iceberg_table = self.ensure_table(table)
        arrow = to_arrow(table, frame)
        with iceberg_table.transaction() as txn:
            present = {f.name for f in iceberg_table.schema().fields}
            missing = [f for f in arrow.schema if f.name not in present]
            if missing:
                with txn.update_schema() as update:
                    update.union_by_name(pa.schema(missing))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                txn.overwrite(arrow)
        snapshot = self.load(table).current_snapshot()
        return int(snapshot.summary["total-records"]) if snapshot else 0

    # --- SQL -------------------------------------------------------------------------------

    def execute(self, statements: list[str]) -> None:
        """CREATE TABLE of a declared table creates the Iceberg table; CREATE VIEW goes to the
        engine as a view (Athena's dialect); anything else runs on the engine."""
        for statement in statements:
            created = _CREATE_TABLE.match(statement)
            if created and created.group(2).lower() in DECLARED_TABLES:
                self.ensure_table(created.group(2).lower())
                continue
            self.engine.run(statement)

    def reader(self) -> AbstractContextManager[Callable[[str], pd.DataFrame]]:
        return self.engine.reader()

    def tables(self) -> set[str]:
        return set(self.table_names()) | self.engine.views()

    def columns(self, name: str) -> pd.DataFrame:
        if name.lower() in self.table_names():
            fields = self.load(name.lower()).schema().fields
            return pd.DataFrame(
                {
                    "column_name": [f.name for f in fields],
                    "data_type": [str(f.field_type) for f in fields],
                    "is_nullable": ["NO" if f.required else "YES" for f in fields],
                }
            )
        return self.engine.columns(name)

    @property
    def catalog(self) -> tuple[str, str]:
        return "information_schema.tables", self.namespace

    def scan(self, name: str, window: Window | None = None) -> pa.Table:
        """A table's rows (one window's, planning only its files), as Arrow."""
        table = self.load(name)
        return table.scan(row_filter=row_filter(window, None)).to_arrow()


_CREATE_TABLE = re.compile(r"\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(?:[\w\"]+\.)*\"?(\w+)\"?", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(?:[\w\"]+\.)*\"?(\w+)\"?", re.IGNORECASE)
_COMMENT = re.compile(r"^\s*--[^\n]*\n|/\*.*?\*/", re.MULTILINE | re.DOTALL)


def _roll_back(table: Any, snapshot_id: int | None) -> None:
    """Put `table` back on `snapshot_id` (None: it had no snapshot: delete every row)."""
    if snapshot_id is None:
        table.overwrite(table.schema().as_arrow().empty_table())
    else:
        table.manage_snapshots().set_current_snapshot(snapshot_id=snapshot_id).commit()


def view_name(statement: str) -> str | None:
    """The view a CREATE VIEW statement makes (lower case), or None."""
    found = _CREATE_VIEW.match(_COMMENT.sub("", statement))
    return found.group(2).lower() if found else None


# --- SQL engines ----------------------------------------------------------------------------


class SqlEngine:
    """Where the lake's SQL runs: views kept, statements run, queries answered."""

    def run(self, statement: str) -> None:
        raise NotImplementedError

    def reader(self) -> Any:
        raise NotImplementedError

    def views(self) -> set[str]:
        raise NotImplementedError

    def columns(self, name: str) -> pd.DataFrame:
        raise NotImplementedError


class LocalSqlEngine(SqlEngine):
    """Athena's stand-in on one machine: each view is kept as its Athena statement in
    `<views_dir>/views.json` (in creation order), and every reader is an in-memory DuckDB in
    which the lake's tables (scanned with pyiceberg, as Arrow) and the views (transpiled
    back from Athena's dialect) are made on first mention."""

    def __init__(self, client: IcebergClient, views_dir: str | os.PathLike[str]):
        self.client = client
        self.path = Path(views_dir) / "views.json"
        self._scans: dict[str, tuple[str, pa.Table]] = {}  # table -> (metadata it was read at, rows)

    def _scan(self, name: str) -> pa.Table:
        """The table's rows, read again only when the table has changed since."""
        table = self.client.load(name)
        cached = self._scans.get(name)
        if cached is None or cached[0] != table.metadata_location:
            cached = (table.metadata_location, table.scan().to_arrow())
            self._scans[name] = cached
        return cached[1]

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_text(encoding="utf-8")))

    def _save(self, views: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(list(views.items()), indent=1), encoding="utf-8")
        os.replace(temporary, self.path)  # readers see the old list or the new one

    def run(self, statement: str) -> None:
        name = view_name(statement)
        athena = to_athena(statement)
        if name is None:
            with self.reader() as read:
                read(statement)
            return
        views = self._load()
        views[name] = athena
        with self.reader(views) as read:  # the view must build on the data before it is kept
            read(f"SELECT * FROM {self.client.qualified(name)} LIMIT 0")
        self._save(views)

    def views(self) -> set[str]:
        return set(self._load())

    def columns(self, name: str) -> pd.DataFrame:
        with self.reader() as read:
            return read(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                f"WHERE table_schema = '{self.client.namespace}' AND lower(table_name) = '{name.lower()}' "
                "ORDER BY ordinal_position"
            )

    @contextmanager
    def reader(self, views: dict[str, str] | None = None) -> Iterator[Callable[[str], pd.DataFrame]]:
        import duckdb

        views = self._load() if views is None else views
        conn = duckdb.connect()
        made: set[str] = set()
        tables = set(self.client.table_names())
        namespace = self.client.namespace
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")

        def make(text: str) -> None:
            for name in sorted(tables | set(views)):
                if name in made or not re.search(rf"\b{name}\b", text, re.IGNORECASE):
                    continue
                made.add(name)
                if name in tables:  # a table, as the catalogs describe tables
                    conn.register(f"_lake_{name}", self._scan(name))
                    conn.execute(f"CREATE TABLE {namespace}.{name} AS SELECT * FROM _lake_{name}")
                    conn.unregister(f"_lake_{name}")
                else:
                    make(views[name])
                    conn.execute(athena_to_duckdb(views[name]))

        def read(sql: str) -> pd.DataFrame:
            make(" ".join([*tables, *views]) if "information_schema" in sql.lower() else sql)
            return lower_case(conn.execute(sql).fetchdf())

        try:
            yield read
        finally:
            conn.close()


class AthenaEngine(SqlEngine):
    """Amazon Athena (engine 3) through boto3: each statement transpiled to Athena's dialect,
    run in `workgroup` on `database` (the Glue database), results read page by page."""

    def __init__(self, client: IcebergClient, workgroup: str, *, poll_s: float = 0.5, athena: Any = None):
        self.client = client
        self.workgroup = workgroup
        self.poll_s = poll_s
        self._athena = athena

    @property
    def athena(self) -> Any:
        if self._athena is None:
            import boto3

            self._athena = boto3.client("athena")
        return self._athena

    def _query(self, sql: str) -> pd.DataFrame:
        started = self.athena.start_query_execution(
            QueryString=to_athena(sql),
            QueryExecutionContext={"Database": self.client.namespace},
            WorkGroup=self.workgroup,
        )
        query_id = started["QueryExecutionId"]
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(self.poll_s)
        if status["State"] != "SUCCEEDED":
            raise RuntimeError(f"Athena query {query_id} {status['State']}: {status.get('StateChangeReason', '')}")
        rows: list[list[str | None]] = []
        columns: list[tuple[str, str]] = []
        for page in self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            result = page["ResultSet"]
            columns = columns or [(c["Name"], c["Type"]) for c in result["ResultSetMetadata"]["ColumnInfo"]]
            rows += [[d.get("VarCharValue") for d in r["Data"]] for r in result["Rows"]]
        names = [n for n, _ in columns]
        if rows and rows[0] == names:  # a SELECT's first row repeats the header
            rows = rows[1:]
        frame = pd.DataFrame(rows, columns=names, dtype=object)
        for name, kind in columns:  # Athena answers text: each column as its type says
            frame[name] = athena_values(frame[name], kind)
        return lower_case(frame)

    def run(self, statement: str) -> None:
        self._query(statement)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        yield self._query

    def views(self) -> set[str]:
        found = self._query(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{self.client.namespace}' AND table_type = 'VIEW'"
        )
        return {str(n).lower() for n in found.get("table_name", [])}

    def columns(self, name: str) -> pd.DataFrame:
        return self._query(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = '{self.client.namespace}' AND table_name = '{name.lower()}' ORDER BY ordinal_position"
        )


def athena_values(values: pd.Series, kind: str) -> pd.Series:
    """A column of an Athena result (text, None for NULL) as its Athena type reads in pandas."""
    kind = kind.lower()
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        return pd.to_numeric(values).astype("Int64")
    if kind in ("double", "float", "real") or kind.startswith("decimal"):
        return pd.to_numeric(values).astype("float64")
    if kind == "boolean":
        return values.map({"true": True, "false": False, None: None}).astype("boolean")
    if kind.startswith("timestamp"):
        return pd.to_datetime(values.str.replace(" UTC", "+00:00", regex=False), utc=True, format="ISO8601")
    if kind == "date":
        return pd.to_datetime(values).astype("datetime64[s]")
    return values


# --- catalogs -------------------------------------------------------------------------------


def local_catalog(lake_dir: str | os.PathLike[str], name: str = "lake") -> Any:
    """pyiceberg's SQL catalog on SQLite (`<lake_dir>/catalog.db`), data under `lake_dir`."""
    from pyiceberg.catalog.sql import SqlCatalog

    root = Path(lake_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(name, uri=f"sqlite:///{root / 'catalog.db'}", warehouse=root.as_uri())


def glue_catalog(warehouse: str, properties: Mapping[str, str] | None = None, name: str = "glue") -> Any:
    """AWS Glue's Data Catalog, new tables' data under `warehouse` (s3://bucket/prefix).
    `properties`: pyiceberg's (region, endpoints); credentials come from the AWS chain."""
    from pyiceberg.catalog.glue import GlueCatalog

    return GlueCatalog(name, **{"warehouse": warehouse, **(properties or {})})


def local_client(lake_dir: str | os.PathLike[str], namespace: str = "analytics") -> IcebergClient:
    """The local lake: SQL catalog and files under `lake_dir`, SQL on DuckDB."""
    return IcebergClient(lambda: local_catalog(lake_dir), namespace, lambda c: LocalSqlEngine(c, lake_dir))
