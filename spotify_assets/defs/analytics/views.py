"""The analytics views: one asset per SQL file in `sql/views/`, created in the warehouse.

Each file holds one `CREATE OR REPLACE VIEW {schema}.<name> AS …` statement written in SQL
that DuckDB and Snowflake both run, rendered by the warehouse: `{schema}` becomes the
warehouse schema (`analytics` locally, `DATABASE.SCHEMA` in Snowflake) and
`{recent_release_days}` the configured cut.
An asset's dependencies are read from the tables and views its file names, so the lineage
graph is the SQL's own. A declared table a view reads that no run has written yet (`streams`
before any listening export was dropped, for `genres`) is created empty from its declaration
first, so the view answers with what there is instead of failing.
"""

import re
from pathlib import Path

import dagster as dg

from spotify_assets.defs.io_managers import preview_table
from spotify_assets.defs.resources import Warehouse
from spotify_assets.lib.tables.schema import DECLARED_TABLES, TABLES

SQL_DIR = Path(__file__).resolve().parents[3] / "sql" / "views"
PREVIEW_ROWS = 10

# How each view's preview is ordered (the most telling rows first).
PREVIEW_ORDER = {
    "artist_analytics": "song_count DESC, track_appearances DESC, artist_id",
    "top_artists": "artist_rank",
    "popularity_trends": "window_start DESC, release_group",
    "current_top_songs": "song_rank",
    "popularity_history": "window_start DESC, popularity_change DESC NULLS LAST, song_id",
    "current_songs": "playlist_appearances DESC, song_id",
    "current_playlist_tracks": "playlist_id, position",
    "listening_plays": "played_at DESC, listener, source_sha256, source_row",
    "listening_activity": "period_start DESC, period, listener",
    "listening_by_hour": "listener, hour_of_day",
    "listening_by_weekday": "listener, iso_weekday",
    "listening_by_country": "streams DESC, conn_country",
    "listening_skip_rate": "month_start DESC, listener",
    "listening_active_days": "month_start DESC, listener",
    "listening_top_artists": "artist_rank, listener",
    "listening_top_tracks": "track_rank, listener",
    "listening_artist_churn": "month_start DESC, listener",
    "genres": "song_count DESC, playlist_rows DESC, genre",
    "rising_songs": "rising_rank",
}

_REFERENCE = re.compile(r"\{schema\}\.(\w+)")


def view_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def view_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def references(name: str, sql: str | None = None) -> list[str]:
    """Tables and views the view reads, in the order its SQL names them."""
    sql = view_sql(name) if sql is None else sql
    refs = [r for r in dict.fromkeys(_REFERENCE.findall(sql)) if r != name]
    unknown = [r for r in refs if r not in DECLARED_TABLES and not (SQL_DIR / f"{r}.sql").exists()]
    if unknown:
        raise ValueError(f"sql/views/{name}.sql reads {unknown}, which are neither tables nor views")
    return refs


def missing_tables(warehouse: Warehouse, names: list[str]) -> list[str]:
    """CREATE TABLE statements for the declared tables among `names` the warehouse lacks."""
    # the windowed tables are written before any view is built; the others may not be yet
    declared = [n for n in names if n in DECLARED_TABLES and n not in TABLES]
    if not declared:
        return []
    present = warehouse.tables()
    dialect = warehouse.client().dialect
    return [dialect.create_table(DECLARED_TABLES[n], warehouse.qualified(n)) for n in declared if n not in present]


def _description(name: str, sql: str) -> str:
    comment = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        comment.append(line.removeprefix("--").strip())
    return " ".join(comment) + f"\n\nDefined in sql/views/{name}.sql."


MODEL_VIEWS = frozenset({"rising_songs"})  # views over the forecast: with it, in the `model` group


def group_of(name: str) -> str:
    """The views about listening sit with `streams` in the `listening` group, the views over the
    forecast with it in `model`; the rest are `analytics`."""
    if name.startswith("listening_"):
        return "listening"
    return "model" if name in MODEL_VIEWS else "analytics"


def view_schema(warehouse: Warehouse, name: str) -> dg.TableSchema:
    """A view's columns as the warehouse describes them: names (lower case, as the tables'),
    the warehouse's own type names, in the view's order."""
    found = warehouse.columns(name)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                str(row.column_name).lower(),
                str(row.data_type).lower(),
                constraints=dg.TableColumnConstraints(nullable=str(row.is_nullable).upper() != "NO"),
            )
            for row in found.itertuples()
        ]
    )


def _view_asset(name: str) -> dg.AssetsDefinition:
    sql = view_sql(name)  # read once: the lineage, the description and the statement agree

    @dg.asset(
        name=name,
        group_name=group_of(name),
        deps=references(name, sql),
        kinds={"sql"},
        tags={"layer": "view"},
        description=_description(name, sql),
    )
    def _view(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        view = warehouse.qualified(name)
        statement = warehouse.render(sql, recent_release_days=int(warehouse.recent_release_days))
        warehouse.execute([*missing_tables(warehouse, references(name, sql)), statement])
        order = PREVIEW_ORDER.get(name, "1")
        # One evaluation of the view (and one connection): its first rows, each with the count.
        preview = warehouse.query(
            f"SELECT *, COUNT(*) OVER () AS view_rows FROM {view} ORDER BY {order} LIMIT {PREVIEW_ROWS}"
        )
        counted = preview.pop("view_rows")  # also from an empty view: the preview shows the view's columns only
        rows = int(counted.iloc[0]) if len(counted) else 0
        schema = view_schema(warehouse, name)
        context.log.info(f"view {view}: {rows} rows, {len(schema.columns)} columns")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/table_name": view,
                "dagster/column_schema": schema,
                "preview": preview_table(preview, PREVIEW_ROWS, schema),
                "sql": dg.MetadataValue.md(f"```sql\n{statement}\n```"),
            }
        )

    return _view


view_assets = [_view_asset(name) for name in view_names()]
