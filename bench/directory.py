"""Benchmark: GET /directory.json from a real daemon, as MicroSIP fetches it at each refresh.

    python bench/directory.py [--quick] [--contacts N] [--requests N]

Writes a Contacts.xml of N contacts (a tenth of them from a directory, the rest the user's own)
beside an ini, starts the daemon on it (uvicorn on loopback, in this process), puts calls on
the line through the hook endpoint (ringing and connected numbers that name contacts), then
times sequential requests with the directory key: median and p99, against the baseline measured
in the same run on the same connection, ``GET /api/v1/health`` (the daemon's cheapest route).
The first request, which reads Contacts.xml, is timed apart; later ones reuse the parsed
contacts until the file changes.

``--quick`` (500 contacts, 20 requests) is for the smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx2

from microsip_bridge import wire
from microsip_bridge.directory.key import ensure_key
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import write_contacts
from microsip_bridge.microsip.directory import read_directory_response
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.server.runner import Daemon
from microsip_bridge.server.settings import DaemonSettings

LIVE_CALLS = 20


def make_contacts(count: int) -> list[Contact]:
    return [
        Contact(
            name=f"Contact {i} & Co",
            number=f"+49 30 {5550000 + i}",
            info="x" * (i % 7),
            directory=i % 10 == 0,
            presence=i % 50 == 0,
        )
        for i in range(count)
    ]


def timed(action: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    count, requests = (500, 20) if args.quick else (args.contacts, args.requests)
    with tempfile.TemporaryDirectory(prefix="msb-bench-directory-") as tmp:
        root = Path(tmp)
        home, folder = root / "home", root / "MicroSIP"
        folder.mkdir()
        IniDocument.from_text("[Settings]\r\n").save(folder / "microsip.ini", backups=0)
        write_contacts(folder / "Contacts.xml", make_contacts(count), backups=0)
        key = ensure_key(home)
        settings = DaemonSettings(home=home, port=0, ini=folder / "microsip.ini")
        daemon = Daemon(settings, configure_logging=False)
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            host, port = daemon.wait_listening()
            token = (home / "token").read_text().strip()
            with httpx2.Client(base_url=f"http://{host}:{port}", timeout=60) as http:
                for i in range(LIVE_CALLS):
                    event = "ring" if i % 2 else "outgoing"
                    number = f"+4930{5550000 + i * 7}"
                    record = wire.make_record(event, number)
                    http.post(
                        wire.HOOK_EVENTS_PATH,
                        json=record,
                        headers={"Authorization": f"Bearer {token}"},
                    ).raise_for_status()

                def directory() -> None:
                    response = http.get("/directory.json", params={"key": key})
                    response.raise_for_status()

                first = timed(directory, 1)[0]
                body = http.get("/directory.json", params={"key": key}).content
                parsed = read_directory_response(body, "application/json")
                lit = sum(1 for p in parsed.presence if p.status != "online")
                ours = timed(directory, requests)
                baseline = timed(lambda: http.get("/api/v1/health").raise_for_status(), requests)
        finally:
            daemon.stop()
            thread.join(60)
    print(
        f"GET /directory.json: {count:,} contacts ({len(parsed.contacts):,} served as items), "
        f"{len(parsed.presence):,} presence entries, {lit} lit by {LIVE_CALLS} calls, "
        f"{len(body):,} bytes; {requests} sequential requests"
    )
    print(f"  first request (reads Contacts.xml)  {first * 1000:8.1f} ms")
    print(
        f"  directory       median {statistics.median(ours) * 1000:8.1f} ms"
        f"   p99 {p99(ours) * 1000:8.1f} ms"
    )
    print(
        f"  baseline health median {statistics.median(baseline) * 1000:8.1f} ms"
        f"   p99 {p99(baseline) * 1000:8.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
