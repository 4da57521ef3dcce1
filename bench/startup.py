"""Benchmark: how long the CLI takes to start, against `python -c pass` in the same run.

    python bench/startup.py [--quick] [--runs N]

Each case runs as a fresh process, the cases interleaved (one run of each, then the next round)
so the machine's load weighs on all alike; it prints each case's median wall time and its ratio
to the median of ``python -c pass``. The cases: ``--help``, ``calls --help``, ``--version`` and
``calls`` on an empty home (no daemon, no database: what a user's first ``calls`` pays), each
through the installed console script and through ``python -m microsip_bridge``.
``--quick`` runs 3 rounds (the suite's smoke test).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ARGS: dict[str, list[str]] = {
    "--help": ["--help"],
    "calls --help": ["calls", "--help"],
    "--version": ["--version"],
    "calls (empty home)": ["calls"],
}


def console_script() -> str | None:
    """The installed `microsip-bridge` beside this interpreter (a venv's bin or Scripts)."""
    folder = Path(sys.executable).parent
    for name in ("microsip-bridge", "microsip-bridge.exe"):
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which("microsip-bridge")


def cases() -> dict[str, list[str]]:
    found = {"python -c pass": [sys.executable, "-c", "pass"]}
    script = console_script()
    for label, args in ARGS.items():
        if script is not None:
            found[f"script {label}"] = [script, *args]
        found[f"-m {label}"] = [sys.executable, "-m", "microsip_bridge", *args]
    return found


def run_once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}: {proc.stderr!r}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds (a smoke run)")
    parser.add_argument("--runs", type=int, default=20, help="rounds (default 20)")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else max(args.runs, 1)
    todo = cases()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MICROSIP_BRIDGE_HOME": home, "COLUMNS": "100"}
        env.pop("MICROSIP_BRIDGE_DEBUG", None)
        times: dict[str, list[float]] = {label: [] for label in todo}
        for _ in range(runs):
            for label, command in todo.items():
                times[label].append(run_once(command, env))
    base = statistics.median(times["python -c pass"])
    print(f"median of {runs} runs each, interleaved; baseline python -c pass: {base * 1e3:.1f} ms")
    for label, samples in times.items():
        median = statistics.median(samples)
        print(f"{label:<28} {median * 1e3:8.1f} ms {median / base:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
