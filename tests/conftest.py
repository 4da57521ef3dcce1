"""Shared fixtures: every test gets its own bridge home; sample files come from tests/data and,
when it is beside the clone, from the real-world corpus."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# The real-world corpus is third-party files, so it lives outside the repository: beside the
# clone, as in the developers' checkout and in CI. Our own files of the same shapes are in DATA
# (tests/fixture_files.py), so a clone alone runs every behaviour; the corpus adds the real world.
CORPUS = REPO.parent / "shared" / "corpus"
CORPUS_ENV = "MSB_REQUIRE_CORPUS"
# CI sets MSB_REQUIRE_CORPUS=1: there a missing corpus fails its tests, never skips them.
CORPUS_REQUIRED = os.environ.get(CORPUS_ENV) == "1"
NO_CORPUS = "the real-world corpus ../shared/corpus is not beside this clone"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(autouse=True)
def bridge_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real user's bridge home (the llm project's pattern)."""
    home = tmp_path_factory.mktemp("bridge-home")
    monkeypatch.setenv("MICROSIP_BRIDGE_HOME", str(home))
    monkeypatch.delenv("MICROSIP_INI", raising=False)
    return home


def need_corpus() -> Path:
    """The corpus folder; without it the calling test is skipped (failed when it is required)."""
    if not CORPUS.is_dir():
        if CORPUS_REQUIRED:
            pytest.fail(f"{CORPUS_ENV}=1 but {NO_CORPUS} ({CORPUS})")
        pytest.skip(NO_CORPUS)
    return CORPUS


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real-world corpus, for the tests that only make sense over its files."""
    return need_corpus()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


PG_ENV = "MSB_TEST_PG_URL"
PG_URL = os.environ.get(PG_ENV)
# CI sets MSB_REQUIRE_PG=1: there a missing server fails the PostgreSQL tests, never skips them.
PG_REQUIRED = os.environ.get("MSB_REQUIRE_PG") == "1"
# Parametrise a test over the store's databases: SQLite always, PostgreSQL when there is one.
DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL and not PG_REQUIRED, reason=f"set {PG_ENV} to test on PostgreSQL"
        ),
    ),
]


def sample_path(name: str) -> Path:
    """``data/<path>``: ours, in tests/data; ``corpus/<path>``: a real-world file."""
    root, _, path = name.partition("/")
    if root == "corpus":
        return need_corpus() / path
    assert root == "data", f"a sample is data/... or corpus/..., not {name!r}"
    return DATA / path


@pytest.fixture
def sample(request: pytest.FixtureRequest) -> Path:
    """One sample file: parametrise ``sample`` indirectly with ``data/...``/``corpus/...`` names,
    or mark the test ``@pytest.mark.samples(glob, ...)`` to run it over every matching file."""
    return sample_path(request.param)


def sample_names(patterns: tuple[str, ...]) -> list[str]:
    """Our files matching the globs, then the corpus's; a stand-in case when it is absent."""
    ours = sorted({p for pattern in patterns for p in DATA.glob(pattern) if p.is_file()})
    names = [f"data/{p.relative_to(DATA).as_posix()}" for p in ours]
    if not CORPUS.is_dir():
        # One case that resolves to the corpus skip (or failure), so that its absence shows.
        return [*names, f"corpus/{patterns[0]}"]
    real = sorted({p for pattern in patterns for p in CORPUS.glob(pattern) if p.is_file()})
    return [*names, *(f"corpus/{p.relative_to(CORPUS).as_posix()}" for p in real)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "samples(*globs): run the test over every file matching the globs, relative to "
        "tests/data and to the corpus (its sample fixture)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("samples")
    if marker is not None:
        metafunc.parametrize("sample", sample_names(marker.args), indirect=True)


def needs_corpus(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    sample = callspec.params.get("sample") if callspec is not None else None
    fixtures = getattr(item, "fixturenames", ())
    return "corpus" in fixtures or (isinstance(sample, str) and sample.startswith("corpus/"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Skipped here, not in a fixture or by a marker, so that the summary folds every such skip
    # into one line with one reason. Required and absent: the corpus fixture fails them instead.
    if not CORPUS.is_dir() and not CORPUS_REQUIRED and needs_corpus(item):
        pytest.skip(NO_CORPUS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the sample MicroSIP folder (portable layout)."""
    target = tmp_path / "MicroSIP"
    shutil.copytree(REPO / "samples" / "MicroSIP", target)
    return target
