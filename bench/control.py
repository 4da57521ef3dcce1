"""Benchmark: dial -> call id returned, through the daemon's API to a simulated MicroSIP.

    python bench/control.py [--quick] [--dials N]

Starts a simulated MicroSIP (3.22.3, our hooks installed, its command channel open) in this
process and a real daemon (its own process, temporary SQLite file) for its folder, with no
cooldown and no rate limit. Then N times (default 100; 5 with ``--quick``), once MicroSIP has no
call up: ``POST /api/v1/control/dial`` until the 202 with the call id (**dial -> id**: opening the
pending call in the store, choosing the transport, sending the command), and, as the baseline in
the same run just before it, ``POST /api/v1/control/hold`` (the same path without a call to
open). Each dialled
call is answered and hung up by the simulated remote party within a few hundred ms; the run
checks that every id is the id its call was logged under.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.sim.calls import RemoteAction, RemoteBehaviour
from microsip_bridge.sim.channel import CommandChannel
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator

DAEMON_CODE = """
import sys
from pathlib import Path
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
serve(
    DaemonSettings(
        home=Path(sys.argv[1]), host="127.0.0.1", port=0, ini=Path(sys.argv[2]),
        control_cooldown=0.0, control_rate=0.0,
    ),
    configure_logging=False,
)
"""
TIMEOUT = 30.0


def percentile(values: Sequence[float], p: int) -> float:
    """The p-th percentile (nearest rank; the maximum for p=99 under 100 samples)."""
    ordered = sorted(values)
    rank = max(1, -(-p * len(ordered) // 100))  # ceil
    return ordered[rank - 1]


def start_daemon(home: Path, ini: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", DAEMON_CODE, str(home), str(ini)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the daemon did not start: {err.strip()}")
        try:
            info = json.loads((home / "daemon.json").read_text("utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("pid") == proc.pid:
            return proc, info
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("the daemon did not publish daemon.json in time")


def post(conn: http.client.HTTPConnection, headers: dict[str, str], path: str, body: object) -> Any:
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status != 202:
        raise RuntimeError(f"{path}: HTTP {response.status}: {data}")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 dials, for the smoke test")
    parser.add_argument("--dials", type=int, default=None, help="dials to time (default 100)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    count = args.dials or (5 if args.quick else 100)

    root = Path(tempfile.mkdtemp(prefix="msb-bench-control-"))
    home = root / "home"
    home.mkdir()
    folder = create_folder(root / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(folder.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    os.environ["MICROSIP_BRIDGE_HOME"] = str(home)  # the hooks the simulator runs find the daemon
    remote = RemoteBehaviour(RemoteAction.ANSWER, after=0.05, talk=0.05)
    sim = Simulator(folder, hook_timeout=10.0, default_remote=remote)
    daemon, info = start_daemon(home, folder.ini)
    dial_ms: list[float] = []
    hold_ms: list[float] = []
    ids: list[str] = []
    not_placed: list[str] = []
    wrong: list[str] = []
    with sim:
        channel = CommandChannel(sim)
        channel.start()
        runner = threading.Thread(target=sim.run, kwargs={"until_idle": False}, daemon=True)
        runner.start()
        token = (home / "token").read_text().strip()
        host, port = info["host"], info["port"]
        headers = {
            "Host": f"{host}:{port}",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            for n in range(count):
                give_up = time.monotonic() + TIMEOUT
                while sim.active_calls() and time.monotonic() < give_up:
                    time.sleep(0.005)
                # The baseline first, while no call is up: during a call, the simulated
                # MicroSIP (like the real one) takes no command while a hook runs.
                start = time.perf_counter()
                post(conn, headers, "/api/v1/control/hold", {})
                hold_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                answer = post(conn, headers, "/api/v1/control/dial", {"number": f"555{n:04d}"})
                dial_ms.append((time.perf_counter() - start) * 1000)
                ids.append(answer["call_id"])
            give_up = time.monotonic() + TIMEOUT
            db = sqlite3.connect(f"file:{home / 'bridge.db'}?mode=ro", uri=True)
            while time.monotonic() < give_up:
                bound = db.execute(
                    "SELECT count(DISTINCT call_id) FROM events WHERE event = 'outgoing'"
                ).fetchone()[0]
                if bound >= count:
                    break
                time.sleep(0.05)
            linked = {
                row[0] for row in db.execute("SELECT call_id FROM events WHERE event = 'outgoing'")
            }
            # A dial the simulated MicroSIP took but did not place (as MicroSIP, it notes why:
            # e.g. single mode with the last call not yet gone) must end not_placed under its
            # own id; only an id whose `outgoing` landed on another call is wrong.
            for missing in sorted(set(ids) - linked):
                row = db.execute(
                    "SELECT number, outcome FROM calls WHERE call_id = ?", (missing,)
                ).fetchone()
                if row is not None and row[1] == "not_placed":
                    notes = [c.note for c in sim.commands if row[0] in c.text and c.note]
                    not_placed.append(f"{row[0]}: {'; '.join(notes) or 'no note'}")
                else:
                    wrong.append(f"{missing}: {row}")
            db.close()
        finally:
            conn.close()
            sim.stop()
            runner.join(30)
            channel.close()
            daemon.terminate()
            daemon.wait(30)
            if daemon.stderr is not None:
                daemon.stderr.close()
    for text in not_placed:
        print(f"not placed by the simulator, ended not_placed: {text}", file=sys.stderr)
    if wrong:
        print(f"{len(wrong)} dial ids were not the ids of their calls: {wrong}", file=sys.stderr)
        return 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{count} dials through the daemon's API to the simulator (load {load:.1f})")
    for label, values in (("dial -> call id", dial_ms), ("hold (baseline)", hold_ms)):
        print(
            f"{label:18} p50 {statistics.median(values):6.1f} ms   "
            f"p99 {percentile(values, 99):6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
