"""Benchmark: the event WebSocket's delivery, against the event log in the same run; p50 and p99.

    python bench/ws.py [--quick] [--events N] [--clients N] [--fan-events N]

Starts a real daemon (its own process, temporary SQLite file).

1. **One client.** A WebSocket client listens (live only) while the hook is spawned N times
   (default 200; 10 with ``--quick``), one at a time. For each event: **spawn -> stored** (a
   separate reader polls the database every 0.5 ms, as bench/latency.py does) and **spawn ->
   WebSocket** (the client's receipt), and the difference per event, **WebSocket - stored**:
   what the WebSocket adds to the log (target: <= 5 ms at p99).
2. **Many clients.** ``--clients`` WebSockets (default 1000; 50 with ``--quick``) connect, then
   the hook is spawned ``--fan-events`` times (default 20; 5 with ``--quick``), one at a time;
   **spawn -> each client** is measured for every client and event (target: p99 <= 250 ms).
   Every hook must be taken by the daemon (none spooled): the clients do not count against the
   daemon's cap on HTTP connections.

The clients run on the same machine (part 2: in ``--client-procs`` processes, default 2), so on
a small machine their own work is in the figures too.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
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
from types import ModuleType

from websockets.asyncio.client import ClientConnection, connect

POLL = 0.0005
TIMEOUT = 20.0
WS_PATH = "/api/v1/events/ws"


def _sibling(name: str) -> ModuleType:
    # bench/ is not a package: the daemon helpers live in the sibling scripts.
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values: Sequence[float], p: int) -> float:
    """The p-th percentile (nearest rank; the maximum for p=99 under 100 samples)."""
    ordered = sorted(values)
    rank = max(1, -(-p * len(ordered) // 100))  # ceil
    return ordered[rank - 1]


def raise_fd_limit() -> None:
    """Room for a thousand client sockets in this process (as the daemon's guard does)."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, 65536), hard))


def line(label: str, values: Sequence[float]) -> str:
    return (
        f"  {label:<22} p50 {percentile(values, 50) * 1000:7.1f} ms   "
        f"p99 {percentile(values, 99) * 1000:7.1f} ms   "
        f"mean {statistics.fmean(values) * 1000:7.1f} ms   (n={len(values)})"
    )


class Daemon:
    def __init__(self, home: Path) -> None:
        info = json.loads((home / "daemon.json").read_text("utf-8"))
        self.url = f"ws://{info['host']}:{info['port']}{WS_PATH}"
        self.headers = {"Authorization": f"Bearer {(home / 'token').read_text().strip()}"}

    async def client(self) -> ClientConnection:
        return await connect(
            self.url,
            additional_headers=self.headers,
            compression=None,
            open_timeout=60,
            max_queue=None,
        )


def one_client(home: Path, daemon: Daemon, command: list[str], count: int) -> dict[str, list]:
    """Part 1: spawn -> stored and spawn -> WebSocket for the same events."""
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    received: dict[str, float] = {}
    ready = threading.Event()
    stop = threading.Event()

    async def listen() -> None:
        async with await daemon.client() as ws:
            ready.set()
            while not stop.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                received[json.loads(text)["number"]] = time.perf_counter()

    thread = threading.Thread(target=asyncio.run, args=(listen(),), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the WebSocket client did not connect")
    stored: list[float] = []
    delivered: list[float] = []
    added: list[float] = []
    reader = sqlite3.connect(f"file:{home / 'bridge.db'}?mode=ro", uri=True)
    try:
        for n in range(count):
            number = f"ws{n:06d}"
            start = time.perf_counter()
            proc = subprocess.Popen([*command, "incoming", number], env=env)
            give_up = start + TIMEOUT
            at_store = None
            while number not in received or at_store is None:
                if at_store is None:
                    row = reader.execute(
                        "SELECT 1 FROM events WHERE number = ?", (number,)
                    ).fetchone()
                    if row is not None:
                        at_store = time.perf_counter()
                if time.perf_counter() > give_up:
                    raise RuntimeError(f"event {number} not seen within {TIMEOUT} s")
                time.sleep(POLL)
            proc.wait(TIMEOUT)
            stored.append(at_store - start)
            delivered.append(received[number] - start)
            added.append(received[number] - at_store)
    finally:
        reader.close()
        stop.set()
        thread.join(10)
    return {"stored": stored, "delivered": delivered, "added": added}


def _client_process(
    url: str,
    headers: dict[str, str],
    clients: int,
    events: int,
    ready: mp.Queue,  # type: ignore[type-arg]
    results: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """One process's share of the clients: connects them, then for each event reports when the
    last of them received it (and every receipt time, at the end)."""
    raise_fd_limit()

    async def run() -> None:
        conns: list[ClientConnection] = []
        for start in range(0, clients, 50):  # in waves: the listen backlog is 128
            conns += await asyncio.gather(
                *(
                    connect(url, additional_headers=headers, compression=None, open_timeout=60)
                    for _ in range(min(50, clients - start))
                )
            )
        ready.put(len(conns))
        times: list[tuple[int, float]] = []
        sources: set[str] = set()

        # They look for the number in the text (the daemon's JSON has ", " and ": "
        # separators) instead of parsing it: the clients' own work is not the daemon's.
        async def one(ws: ClientConnection, n: int) -> None:
            wanted = f'"number": "fan{n:06d}"'
            while True:
                text = await asyncio.wait_for(ws.recv(), TIMEOUT)
                if wanted in text:
                    times.append((n, time.perf_counter()))
                    sources.add("hook" if '"source": "hook"' in text else text[:200])
                    return

        try:
            for n in range(events):
                await asyncio.gather(*(one(ws, n) for ws in conns))
                ready.put(n)
        finally:
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
        results.put((times, sorted(sources)))

    asyncio.run(run())


def many_clients(
    home: Path, daemon: Daemon, command: list[str], clients: int, events: int, procs: int
) -> list[float]:
    """Part 2: every client's receipt of each event, from the hook's spawn. The clients run in
    ``procs`` processes (perf_counter is the system's monotonic clock: comparable across
    processes on one machine)."""
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    ready: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [
        mp.Process(
            target=_client_process,
            args=(daemon.url, daemon.headers, share, events, ready, results),
            daemon=True,
        )
        for share in shares
        if share
    ]
    for worker in workers:
        worker.start()
    connected = sum(ready.get(timeout=300) for _ in workers)
    if connected != clients:
        raise RuntimeError(f"only {connected} of {clients} clients connected")
    starts: list[float] = []
    for n in range(events):
        starts.append(time.perf_counter())
        proc = subprocess.Popen([*command, "incoming", f"fan{n:06d}"], env=env)
        for _ in workers:
            if ready.get(timeout=TIMEOUT) != n:
                raise RuntimeError("a client process lost step")
        proc.wait(TIMEOUT)
    latencies: list[float] = []
    for _ in workers:
        times, sources = results.get(timeout=60)
        if sources != ["hook"]:
            raise RuntimeError(f"some hooks did not reach the daemon: {sources}")
        latencies += [at - starts[n] for n, at in times]
    for worker in workers:
        worker.join(30)
    return latencies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for the smoke test")
    parser.add_argument("--events", type=int, default=None, help="part 1 hooks (default 200)")
    parser.add_argument("--clients", type=int, default=None, help="part 2 clients (default 1000)")
    parser.add_argument("--fan-events", type=int, default=None, help="part 2 hooks (default 20)")
    parser.add_argument(
        "--client-procs", type=int, default=2, help="processes the part 2 clients run in"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    count = args.events or (10 if args.quick else 200)
    clients = args.clients or (50 if args.quick else 1000)
    fan_events = args.fan_events or (5 if args.quick else 20)

    raise_fd_limit()
    helpers = _sibling("hook.py")
    command = list(helpers.DIRECT)
    home = Path(tempfile.mkdtemp(prefix="msb-bench-ws-"))
    proc = helpers.start_daemon(home)
    try:
        daemon = Daemon(home)
        one = one_client(home, daemon, command, count)
        fan = many_clients(home, daemon, command, clients, fan_events, args.client_procs)
    finally:
        helpers.stop_daemon(proc)
    print(f"{count} hooks spawned one at a time, one WebSocket client, daemon up, SQLite")
    print(line("spawn -> stored", one["stored"]))
    print(line("spawn -> WebSocket", one["delivered"]))
    print(line("WebSocket - stored", one["added"]))
    print(
        f"{fan_events} hooks spawned one at a time, {clients} WebSocket clients "
        f"(in {args.client_procs} processes)"
    )
    print(line("spawn -> each client", fan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
