"""Athena for the tests, which cannot reach it (and moto's Athena runs no SQL: it answers every
query with results set beforehand): a client with boto3's Athena calls that parses each
statement in Athena's dialect with sqlglot (a statement that does not parse fails, as Athena
would fail it) and runs it transpiled to DuckDB over the lake's own tables, answering as Athena
does (text values, a header row, typed column info, pages)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot

from spotify_assets.lib.warehouse.iceberg import IcebergClient, LocalSqlEngine, athena_to_duckdb, view_name

_TYPES = {
    "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TINYINT": "tinyint", "DOUBLE": "double",
    "FLOAT": "real", "BOOLEAN": "boolean", "VARCHAR": "varchar", "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "TIMESTAMP": "timestamp",
}


def _text(value: Any) -> str | None:
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp) or hasattr(value, "strftime") and hasattr(value, "hour"):
        stamp = pd.Timestamp(value)
        text = stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"
        return f"{text} UTC" if stamp.tzinfo is not None else text
    return str(value)


class FakeAthena:
    """What the lake's AthenaEngine calls on boto3's Athena client, on DuckDB."""

    PAGE = 1000

    def __init__(self, lake: IcebergClient, views_dir: Path):
        self.engine = LocalSqlEngine(lake, views_dir)
        self.statements: list[str] = []  # every QueryString received, in Athena's dialect
        self._results: dict[str, tuple[list[tuple[str, str]], list[list[str | None]], str | None]] = {}
        self._ids = itertools.count(1)

    def start_query_execution(self, QueryString: str, QueryExecutionContext: dict, WorkGroup: str) -> dict:  # noqa: N803
        query_id = f"q{next(self._ids)}"
        self.statements.append(QueryString)
        try:
            sqlglot.parse_one(QueryString, read="athena")
            duck = athena_to_duckdb(QueryString)
            if view_name(duck) is not None:
                self.engine.run(duck)
                columns, rows = [], []
            else:
                with self.engine.reader() as read:
                    frame = read(duck)
                columns, rows = self._describe(frame)
            self._results[query_id] = (columns, rows, None)
        except Exception as err:  # Athena reports a failed query; it does not raise on start
            self._results[query_id] = ([], [], f"{type(err).__name__}: {err}")
        return {"QueryExecutionId": query_id}

    def _describe(self, frame: pd.DataFrame) -> tuple[list[tuple[str, str]], list[list[str | None]]]:
        import duckdb

        conn = duckdb.connect()
        conn.register("_frame", frame)
        described = conn.execute("DESCRIBE SELECT * FROM _frame").fetchall()
        conn.close()
        types = [_TYPES.get(str(row[1]).upper(), "varchar") for row in described]
        columns = list(zip([str(c) for c in frame.columns], types))
        rows = [[_text(v) for v in record] for record in frame.astype(object).itertuples(index=False, name=None)]
        return columns, rows

    def get_query_execution(self, QueryExecutionId: str) -> dict:  # noqa: N803
        error = self._results[QueryExecutionId][2]
        status = {"State": "FAILED", "StateChangeReason": error} if error else {"State": "SUCCEEDED"}
        return {"QueryExecution": {"QueryExecutionId": QueryExecutionId, "Status": status}}

    def get_paginator(self, name: str) -> Any:
        assert name == "get_query_results"
        fake = self

        class Paginator:
            def paginate(self, QueryExecutionId: str):  # noqa: N803
                columns, rows, _ = fake._results[QueryExecutionId]
                info = [{"Name": n, "Type": t} for n, t in columns]
                body = [[n for n, _ in columns], *rows] if columns else []
                for start in range(0, max(len(body), 1), fake.PAGE):
                    page = body[start : start + fake.PAGE]
                    yield {
                        "ResultSet": {
                            "ResultSetMetadata": {"ColumnInfo": info},
                            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in page],
                        }
                    }

        return Paginator()
