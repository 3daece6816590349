"""What README.md and docs/*.md tell a user to run or paste must work with what the lock file
installs, and the docs must hold together: short README, links that resolve, every page reachable,
every setting documented, every module path real."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from dagster_postgres.utils import pg_url_from_config

ROOT = Path(__file__).resolve().parents[1]
README_PATH = ROOT / "README.md"
DOCS = ROOT / "docs"
README = README_PATH.read_text(encoding="utf-8")
PAGES = sorted(DOCS.glob("*.md"))
ALL_DOCS = [README_PATH, *PAGES]
README_MAX_BYTES = 10_240
ENV_NAME = r"(?:SPOTIFY|SNOWFLAKE|AWS|SLACK|DAGSTER)_[A-Z0-9_]*[A-Z0-9]"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _prose(markdown: str) -> str:
    """The Markdown without its fenced code blocks (a `# comment` in a bash block is no heading)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (inline Markdown dropped) lower-cased, every
    character but letters, digits, spaces, hyphens and underscores removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def test_github_slug_follows_githubs_rules() -> None:
    assert github_slug("Raw snapshots, warehouse and dashboard") == "raw-snapshots-warehouse-and-dashboard"
    assert github_slug("What's `new`? (v2.0) -- *now*") == "whats-new-v20----now"
    assert anchors("# A\n```bash\n# not a heading\n```\n## A\n### b_c\n") == {"a", "a-1", "b_c"}


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", _prose(markdown), re.M):
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def relative_links(markdown: str) -> list[str]:
    """Targets of inline links and images that are not URLs (code spans and blocks excluded)."""
    prose = re.sub(r"`[^`\n]*`", "``", _prose(markdown))
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


# ----------------------------------------------------------------- checks moved from test_readme


def test_production_instance_config_uses_an_installed_postgres_driver(monkeypatch) -> None:
    """docs/production.md's dagster.yaml: the driver its URL names must be importable (no server needed)."""
    block = re.search(r"`\$DAGSTER_HOME/dagster.yaml`:\n\n```yaml\n(.*?)```", _text(DOCS / "production.md"), re.S)
    assert block, "docs/production.md no longer shows the production dagster.yaml"
    config = yaml.safe_load(block.group(1))
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "x")
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    db = {k: os.environ[v["env"]] if isinstance(v, dict) else v for k, v in postgres_db.items()}
    engine = sqlalchemy.create_engine(pg_url_from_config({"postgres_db": db}))  # imports the DBAPI
    assert engine.dialect.driver == "psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_the_readme_names_the_groups_the_ui_shows() -> None:
    """The asset table at the top of the README: every asset it names is in the group it says."""
    from spotify_assets.definitions import defs

    groups = {spec.key.to_user_string(): spec.group_name for spec in defs().resolve_all_asset_specs()}
    table = re.search(r"\| asset \| group \| what it is \|\n\|---\|---\|---\|\n((?:\|.*\n)+)", README)
    assert table, "README no longer has the asset table"
    said: dict[str, str] = {}
    for line in table.group(1).splitlines():
        names, group = line.split("|")[1:3]
        for name in re.findall(r"`([\w*]+)`", names):
            matching = [n for n in groups if n.startswith(name[:-1])] if name.endswith("*") else [name]
            assert matching, f"README names {name}, which is no asset"
            said |= {n: group.strip() for n in matching}
    assert {n: groups[n] for n in said} == said
    assert set(said) == set(groups), f"assets the README's table leaves out: {sorted(set(groups) - set(said))}"


def test_the_readme_starts_the_ui_with_dg_dev() -> None:
    """`dagster dev` prints a SupersessionWarning pointing at `dg dev`: the README starts the UI with
    `dg dev`, and no command in the README or a docs page says `dagster dev`."""

    def commands(markdown: str) -> list[str]:
        return [line for block in re.findall(r"```bash\n(.*?)```", markdown, re.S) for line in block.splitlines()]

    assert any(line.rstrip().endswith("uv run dg dev") for line in commands(README))
    for path in ALL_DOCS:
        assert not [line for line in commands(_text(path)) if re.search(r"\bdagster dev\b", line)], path.name


# ----------------------------------------------------------------------------- the docs as a whole


def test_the_readme_is_short() -> None:
    """The README says what this is, the two commands, the UI and where to go next; the rest is in docs/."""
    size = len(README.encode("utf-8"))
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, more than {README_MAX_BYTES}: move a section to docs/"


def test_there_are_docs_pages() -> None:
    names = {p.name for p in PAGES}
    assert {"configuration.md", "warehouse.md", "quality-and-alerts.md", "listening-history.md",
            "model.md", "production.md", "development.md"} <= names


@pytest.mark.parametrize("path", ALL_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    """Every relative link names an existing file, and its #anchor a heading of that file."""
    broken = []
    for target in relative_links(_text(path)):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(_text(linked)):
            broken.append(f"{target}: no heading of {linked.name} has the anchor #{anchor}")
    assert not broken, f"{path.name}: " + "; ".join(sorted(set(broken)))


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(README) if t.partition("#")[0]}
    unlinked = [p.name for p in PAGES if p.resolve() not in linked]
    assert PAGES and not unlinked, f"docs pages no link in README.md reaches: {unlinked}"


def settings_variables() -> set[str]:
    """The environment variables `lib/settings.py` reads: the string literals that are a whole
    variable name (what it passes to its reader), taken from its source."""
    source = _text(ROOT / "spotify_assets/lib/settings.py")
    return set(re.findall(rf"[\"']({ENV_NAME})[\"']", source))


def test_every_setting_is_documented_in_configuration() -> None:
    names = settings_variables()
    assert len(names) >= 30 and "SPOTIFY_ASSETS_DEPLOYMENT" in names, sorted(names)  # the regex still finds them
    documented = set(re.findall(rf"`({ENV_NAME})`", _text(DOCS / "configuration.md")))
    assert not names - documented, f"read by lib/settings.py, not in docs/configuration.md: {sorted(names - documented)}"


def test_every_spotify_assets_variable_the_docs_name_exists() -> None:
    source = "\n".join(_text(p) for p in (ROOT / "spotify_assets").rglob("*.py"))
    for path in ALL_DOCS:
        named = set(re.findall(r"\bSPOTIFY_ASSETS_[A-Z0-9_]*[A-Z0-9]\b", _text(path)))
        unknown = sorted(n for n in named if not re.search(rf"\b{n}\b", source))
        assert not unknown, f"{path.name} names variables the package never reads: {unknown}"


def test_every_module_path_the_docs_name_exists() -> None:
    """`spotify_assets/….py` and `spotify_assets_tests/….py`: files move, sentences must follow."""
    for path in ALL_DOCS:
        named = set(re.findall(r"\bspotify_assets(?:_tests)?/[\w/]+\.py\b", _text(path)))
        missing = sorted(n for n in named if not (ROOT / n).is_file())
        assert not missing, f"{path.name} names files that do not exist: {missing}"


def test_every_module_the_docs_run_or_import_exists() -> None:
    """`python -m spotify_assets_tests.benchmarks.x`, `from spotify_assets.definitions import defs`."""
    for path in ALL_DOCS:
        named = set(re.findall(r"(?:-m|from|import)\s+(spotify_assets(?:_tests)?(?:\.\w+)+)", _text(path)))
        missing = sorted(
            n for n in named
            if not (ROOT / (n.replace(".", "/") + ".py")).is_file() and not (ROOT / n.replace(".", "/") / "__init__.py").is_file()
        )
        assert not missing, f"{path.name} runs or imports modules that do not exist: {missing}"
