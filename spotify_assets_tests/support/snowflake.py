"""What the tests need to speak to fakesnow's Snowflake server.

fakesnow implements Snowflake's SQL over the wire protocol but not its file transfer (PUT to
a stage, then COPY INTO), which `write_pandas` uses. The production load path is: bulk-load
the frame into a temporary table with `write_pandas`, then swap the window in one
transaction. Against fakesnow, only the bulk-load step is replaced by `insert_rows`, which
fills the same temporary table with a parameterised multi-row INSERT; everything else (DDL,
the transaction, deletes, reads, views) is the production code. `stage_with_write_pandas`
itself is tested separately for the arguments it passes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _python(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def insert_rows(conn: Any, frame: pd.DataFrame, table: str) -> None:
    """Fill `table` (in the session's current schema) with the frame's rows by INSERT."""
    if frame.empty:
        return
    columns = ", ".join(frame.columns)
    placeholders = ", ".join(["%s"] * len(frame.columns))
    rows = [tuple(_python(v) for v in row) for row in frame.itertuples(index=False)]
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)


def connection_args(server: dict, database: str) -> dict[str, Any]:
    """Arguments for snowflake.connector.connect to the fakesnow server and a database."""
    return {**server, "database": database}
