"""Smoke tests: the caller-name and phone-number benchmarks run in quick mode, with baselines."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_names_quick_mode_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert load("names").main(["--quick"]) == 0
    out = capsys.readouterr().out
    # A fifth of the calls each: equal E.164, MicroSIP's rule, bridge contacts are named.
    assert "2000 contacts in Contacts.xml, 200 bridge contacts; 500 calls, 300 named" in out
    assert re.search(r"name lookup\s+median\s+[\d.]+ ms\s+p99\s+[\d.]+ ms", out)
    assert re.search(r"baseline MicroSIP\s+median\s+[\d.]+ ms", out)
    assert re.search(r"ratio to baseline\s+median\s+[\d.]+ x", out)


def test_numbers_quick_mode_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert load("phone_numbers").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "2000 distinct numbers (1430 phone, 285 extension, 285 sip)" in out
    for line in ("cold", "cached"):
        assert re.search(rf"{line}\s+[\d,]+ numbers/s\s+\([\d.]+ x baseline\)", out), line
    assert re.search(r"cached / cold: [\d.]+ x", out)
