"""Shared fixtures: every test gets its own bridge home, and the real-world corpus is at hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
# CI clones main next to a copy of shared/, as the developers' checkout is: ../shared/corpus.
CORPUS = REPO.parent / "shared" / "corpus"
DATA = Path(__file__).resolve().parent / "data"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(autouse=True)
def bridge_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real user's bridge home (the llm project's pattern)."""
    home = tmp_path_factory.mktemp("bridge-home")
    monkeypatch.setenv("MICROSIP_BRIDGE_HOME", str(home))
    monkeypatch.delenv("MICROSIP_INI", raising=False)
    return home


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing: {CORPUS}")
    return CORPUS


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
