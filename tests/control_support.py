"""A running simulated MicroSIP serving commands, with our hooks installed, and a real daemon
beside it: what the control tests and the control benchmark drive."""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.server.runner import Daemon
from microsip_bridge.sim.channel import CommandChannel
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator
from tests.daemon_support import live_daemon


def hooked_folder(path: Path, *, version: str = "3.22.3") -> Path:
    """A simulated MicroSIP folder with our hook installed, as `hooks install` writes it."""
    sim = create_folder(path, domain="pbx.example.invalid", version=version)
    doc = IniDocument.load(sim.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    return sim.path


@contextmanager
def serving_simulator(folder: Path, **options: Any) -> Iterator[Simulator]:
    """A Simulator started on ``folder``, its command channel open and its scheduler running
    in a thread, as `microsip-bridge sim --serve` runs it."""
    sim = Simulator(folder, hook_timeout=10.0, **options)
    with sim:
        channel = CommandChannel(sim)
        channel.start()
        thread = threading.Thread(target=sim.run, kwargs={"until_idle": False}, daemon=True)
        thread.start()
        try:
            yield sim
        finally:
            sim.stop()
            thread.join(30)
            channel.close()


@dataclass
class Api:
    """A client of a live daemon's API, with its token."""

    host: str
    port: int
    token: str

    def post(self, path: str, body: object | None = None) -> tuple[int, dict[str, Any], Any]:
        """POST JSON; the status, the headers and the decoded answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            data = b"" if body is None else json.dumps(body).encode()
            conn.request(
                "POST",
                path,
                body=data,
                headers={
                    "Host": f"{self.host}:{self.port}",
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = conn.getresponse()
            raw = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, json.loads(raw) if raw else None
        finally:
            conn.close()


@contextmanager
def control_daemon(home: Path, folder: Path, **changes: object) -> Iterator[tuple[Daemon, Api]]:
    """A live daemon for ``folder``'s MicroSIP, and an API client for it."""
    with live_daemon(home, ini=folder / "microsip.ini", **changes) as daemon:
        host, port = daemon.wait_listening()
        token = (home / "token").read_text().strip()
        yield daemon, Api(host, port, token)
