"""The asset checks in real runs of the pipeline job: they run per window with the assets,
pass on the sample, and a blocking failure keeps the views from being built."""

import dagster as dg
import pandas as pd
import pytest

from spotify_assets.definitions import defs
from spotify_assets_tests.support.windows import windows
from spotify_assets.defs.analytics.views import view_names
from spotify_assets.lib.quality import rules as quality
from spotify_assets.lib.tables.normalize import NormalizedWindow, Normalizer

TABLE_NAMES = ("songs", "artists", "albums", "song_artists", "playlists", "playlist_tracks")


def _playlist_views() -> set[str]:
    """The views the pipeline job builds from the tables (the listening views come from streams,
    in listening_job; rising_songs from the forecast, which one window cannot train)."""
    return {n for n in view_names() if not n.startswith("listening_") and n != "rising_songs"}


def _window(offset: int = 1) -> str:
    return windows().get_partition_keys()[-offset]


def _run(instance: dg.DagsterInstance, key: str, job: str = "spotify_pipeline_job") -> dg.ExecuteInProcessResult:
    return defs().resolve_job_def(job).execute_in_process(partition_key=key, instance=instance, raise_on_error=False)


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{c.asset_key.to_user_string()}/{c.check_name}": c for c in result.get_asset_check_evaluations()}


def test_every_asset_shows_its_checks_with_severity_in_the_description() -> None:
    graph = defs().resolve_asset_graph()
    by_asset: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        by_asset.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert set(by_asset) == {"raw_playlist_snapshots", *TABLE_NAMES, "popularity_model", "streams"}
    assert by_asset["streams"] == {"exports_readable"}
    assert by_asset["popularity_model"] == {"beats_baselines", "within_size_bound"}
    assert by_asset["raw_playlist_snapshots"] == {"all_rows_read", "playlists_readable", "volume_stable", "fresh"}
    assert all("unique_key" in by_asset[t] for t in TABLE_NAMES)
    for check in quality.TABLE_CHECKS:
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(check.table), check.name))
        assert spec.blocking == check.blocking
        assert spec.description.startswith("ERROR, blocking" if check.blocking else "WARN")


@pytest.mark.slow
def test_the_scheduled_job_runs_every_window_check_and_they_pass_on_the_sample() -> None:
    with dg.instance_for_test() as instance:
        window = _window()  # once: a run that crosses a window's end must not compare two windows
        result = _run(instance, window)
    assert result.success
    checks = _checks(result)
    # freshness runs on its own schedule; the model's two checks run with its training, which
    # one window cannot give (a forecast is judged on later windows: tests/defs/model)
    assert len(checks) == len(quality.TABLE_CHECKS) + len(quality.RAW_CHECKS)
    assert [k for k, c in checks.items() if not c.passed] == []
    assert _playlist_views() <= _materialized(result)
    songs = checks["songs/unique_key"]
    assert songs.metadata["rows"].value > 0 and songs.metadata["window"].value == window


def _duplicating_a_song(finish):  # type: ignore[no-untyped-def]
    """Normalizer.finish, but the songs frame gets its first row twice."""

    def wrapped(self) -> NormalizedWindow:  # type: ignore[no-untyped-def]
        window = finish(self)
        songs = window.frames["songs"]
        window.frames["songs"] = pd.concat([songs, songs.iloc[[0]]], ignore_index=True)
        return window

    return wrapped


@pytest.mark.slow
def test_a_duplicated_key_blocks_the_views_but_not_the_tables(monkeypatch) -> None:
    monkeypatch.setattr(Normalizer, "finish", _duplicating_a_song(Normalizer.finish))
    with dg.instance_for_test() as instance:
        result = _run(instance, _window())
    assert not result.success
    checks = _checks(result)
    failed = {k: c for k, c in checks.items() if not c.passed}
    assert set(failed) == {"songs/unique_key"}
    assert failed["songs/unique_key"].severity == dg.AssetCheckSeverity.ERROR
    assert failed["songs/unique_key"].metadata["extra_rows"].value == 1
    sample = failed["songs/unique_key"].metadata["failing_sample"]  # the failing keys, as a table
    assert isinstance(sample, dg.TableMetadataValue) and len(sample.records) == 1
    assert {c.name for c in sample.schema.columns} == set(sample.records[0].data) and "song_id" in sample.records[0].data
    materialized = _materialized(result)
    assert set(TABLE_NAMES) <= materialized  # the data is stored (and checkable), but nothing is built on it
    assert not _playlist_views() & materialized
    assert len(checks) == len(quality.TABLE_CHECKS) + len(quality.RAW_CHECKS)  # every other check still ran


@pytest.mark.slow
def test_fixing_the_data_and_rerunning_builds_the_views(monkeypatch) -> None:
    key = _window()
    finish = Normalizer.finish
    with dg.instance_for_test() as instance:
        monkeypatch.setattr(Normalizer, "finish", _duplicating_a_song(finish))
        assert not _run(instance, key).success
        monkeypatch.setattr(Normalizer, "finish", finish)
        result = _run(instance, key)
    assert result.success and _playlist_views() <= _materialized(result)


@pytest.mark.slow
def test_freshness_warns_when_the_newest_window_is_too_old() -> None:
    with dg.instance_for_test() as instance:
        old = _window(5)  # the fifth newest window ended at least 32 hours ago
        assert _run(instance, old).success
        result = defs().resolve_job_def("raw_freshness_job").execute_in_process(instance=instance, raise_on_error=False)
        assert result.success  # a warning does not fail the run
        (fresh,) = result.get_asset_check_evaluations()
        assert not fresh.passed and fresh.severity == dg.AssetCheckSeverity.WARN
        assert fresh.metadata["age_hours"].value > 9
        assert _run(instance, _window()).success
        (fresh,) = defs().resolve_job_def("raw_freshness_job").execute_in_process(instance=instance).get_asset_check_evaluations()
        assert fresh.passed


@pytest.mark.slow
def test_volume_compares_a_window_with_the_one_just_before() -> None:
    job = defs().resolve_job_def("spotify_pipeline_job")
    raw = [dg.AssetKey("raw_playlist_snapshots")]
    before, latest = _window(2), _window()  # together: the two windows must be adjacent
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(partition_key=before, instance=instance, asset_selection=raw)
        second = job.execute_in_process(partition_key=latest, instance=instance, asset_selection=raw)
    first_volume = _checks(first)["raw_playlist_snapshots/volume_stable"]
    second_volume = _checks(second)["raw_playlist_snapshots/volume_stable"]
    assert first_volume.passed and first_volume.metadata["playlists_compared"].value == 0  # nothing stored before it
    assert second_volume.passed and second_volume.metadata["playlists_compared"].value > 0  # the first window


@pytest.mark.slow
def test_the_manifest_carries_what_the_raw_checks_need() -> None:
    window = _window()
    with dg.instance_for_test() as instance:
        assert _run(instance, window).success
    store = defs().resources["raw_store"].store()
    manifest = store.read_manifest(window)
    for facts in manifest.documents.values():
        assert facts["status"] == "ok" and facts["error"] is None and facts["name"]
        assert facts["rows_read"] == facts["rows_total"] > 0


def test_the_readme_documents_every_check_with_its_severity() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "docs/quality-and-alerts.md").read_text(encoding="utf-8")
    section = readme.split("## Data quality", 1)[1].split("\n## ", 1)[0]
    documented: set[tuple[str, str, str]] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            assets = [a.strip("` ") for a in cells[0].split(",")]
            assets = list(TABLE_NAMES) if assets == ["every table"] else assets
            documented |= {(a, cells[1].strip("`"), cells[2]) for a in assets}
    graph = defs().resolve_asset_graph()
    defined = set()
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        defined.add((key.asset_key.to_user_string(), key.name, "ERROR" if spec.blocking else "WARN"))
    assert documented == defined
