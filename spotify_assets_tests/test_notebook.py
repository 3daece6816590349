"""notebooks/popularity_model.ipynb runs top to bottom against a deployment the pipeline just
materialized, and shows that deployment's newest forecast, its evaluation and its forecasts.

The kernel is a subprocess that inherits this process's environment (`clean_env`), so it
reads the same temporary data directory as the runs here. The notebook is executed in
memory and never written back.
"""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import nbformat
import pytest
from nbclient import NotebookClient

from spotify_assets.definitions import defs
from spotify_assets_tests.support.windows import windows
from spotify_assets.lib.model import popularity as ml

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "popularity_model.ipynb"


class _Tables(HTMLParser):
    """The cell texts of every <table> in an HTML fragment (pandas' DataFrame HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:  # type: ignore[no-untyped-def]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _frame_shown(cell: nbformat.NotebookNode) -> list[dict[str, str]]:
    """The rows of the one DataFrame a cell displays, as {column: text}, from its HTML output."""
    htmls = [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    assert len(htmls) == 1, f"expected one table in the output of:\n{cell.source}"
    parser = _Tables()
    parser.feed(htmls[0])
    (table,) = parser.tables
    header, *rows = table
    return [dict(zip(header, row)) for row in rows]


def _code_cell(nb: nbformat.NotebookNode, snippet: str) -> nbformat.NotebookNode:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and snippet in c.source]
    return cell


def _text(cell: nbformat.NotebookNode) -> str:
    """What a cell printed and the plain text of what it displayed."""
    parts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
    parts += [o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {})]
    return "\n".join(parts)


def _model_version(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("popularity_model")]
    return str(event.materialization.metadata["model_version"].value)


def test_the_notebook_shows_the_newest_materialized_model_and_its_predictions(monkeypatch) -> None:
    committed = NOTEBOOK.read_bytes()
    folder_before = sorted(p.name for p in NOTEBOOK.parent.iterdir())
    nb = nbformat.reads(committed.decode("utf-8"), as_version=4)
    # committed without outputs, for the standard kernel
    assert nb.metadata.kernelspec.name == "python3"
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")

    # six windows of the sample from a fixed date, two windows ahead: the fifth trains a forecast,
    # the sixth a different one, so a notebook that showed a stale model would show the first
    monkeypatch.setenv("SPOTIFY_ASSETS_FIRST_WINDOW", "2026-11-06")
    job = defs().resolve_job_def("spotify_pipeline_job")
    config = {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "ops": {"popularity_model_training": {"config": {"horizon_windows": 2}}},
    }
    versions = []
    with dg.instance_for_test() as instance:
        for key in windows().get_partition_keys()[:6]:
            result = job.execute_in_process(partition_key=key, instance=instance, run_config=config)
            if any(e.asset_key == dg.AssetKey("popularity_model") for e in result.get_asset_materialization_events()):
                versions.append(_model_version(result))
    older, newest = versions
    assert older != newest

    d = defs()
    model = d.load_asset_value("popularity_model")
    features = d.load_asset_value("popularity_features")
    stored = d.load_asset_value("song_popularity_predictions")
    assert isinstance(model, ml.PopularityModel) and model.version == newest

    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]

    # the model: the deployment's newest one, shown by its repr
    loading = _code_cell(nb, 'load_asset_value("popularity_model")')
    assert "deployment: local" in _text(loading)
    (shown_model,) = [o["data"]["text/plain"] for o in loading.outputs if o.output_type == "execute_result"]
    assert shown_model == repr(model)
    assert f"version={newest!r}" in shown_model and "persistence" in shown_model
    everything = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert older not in everything

    # the held-out evaluation, as markdown and as the table: every baseline and candidate
    evaluation = _code_cell(nb, "evaluation_markdown")
    (markdown,) = [o["data"]["text/markdown"] for o in evaluation.outputs if "text/markdown" in o.get("data", {})]
    assert markdown == ml.evaluation_markdown(model.evaluation)
    shown = _frame_shown(evaluation)
    assert [r["model"] for r in shown] == list(ml.MODEL_NAMES) == list(model.evaluation.table["model"])
    assert [float(r["mae"]) for r in shown] == pytest.approx(list(model.evaluation.table["mae"]), abs=1e-5)

    # the importances, as a table and in the figure
    importances = _frame_shown(_code_cell(nb, "model.importances"))
    assert [r[""] for r in importances] == list(model.importances.index)
    assert [float(r["importance"]) for r in importances] == pytest.approx(list(model.importances), abs=1e-6)
    (png,) = [o["data"]["image/png"] for o in _code_cell(nb, "ml.plot(model)").outputs if "image/png" in o.get("data", {})]
    assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    # the songs expected to rise: the stored forecasts, most rising first
    rising_cell = _code_cell(nb, "expected to rise")
    rising = stored[stored["expected_change"] > 0].sort_values(["expected_change", "song_id"], ascending=[False, True])
    assert len(rising) > 0
    assert f"{len(rising)} of {len(stored)} songs of the newest window are expected to rise" in _text(rising_cell)
    listed = _frame_shown(rising_cell)
    assert [r["name"] for r in listed] == list(rising["name"].head(10))
    assert [float(r["expected_change"]) for r in listed] == pytest.approx(list(rising["expected_change"].head(10)), abs=1e-9)

    # forecasting again gives what the pipeline stored, with the same model
    compared = _frame_shown(_code_cell(nb, "comparison ="))
    again = model.forecast(features).head(5)
    assert [r["song_id"] for r in compared] == list(again["song_id"])
    table = stored.set_index("song_id")
    assert [float(r["stored"]) for r in compared] == pytest.approx(list(table.loc[list(again["song_id"]), "predicted_popularity"]), abs=1e-9)
    assert [float(r["forecast"]) for r in compared] == pytest.approx(list(again["predicted_popularity"]), abs=1e-9)
    assert {r["model_version"] for r in compared} == {newest}
    assert {r["same"] for r in compared} == {"True"}

    # executed in memory only: the committed notebook and its folder are untouched
    assert NOTEBOOK.read_bytes() == committed
    assert sorted(p.name for p in NOTEBOOK.parent.iterdir()) == folder_before
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")  # (the in-memory copy ran)
