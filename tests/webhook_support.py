"""A real webhook receiver on loopback for the webhook tests and bench: it records what it
gets, and can refuse connections, answer 500, hang past the sender's timeout, or recover."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64: a test key


@dataclass
class Delivery:
    """One request the receiver answered 2xx: its id, its body, whether it verified."""

    msg_id: str
    body: dict[str, Any]
    verified: bool
    at: float


@dataclass
class Receiver:
    """Modes: "ok" (204), "500", "hang" (answers after ``hang_seconds``: past the timeout),
    "410", "retry-after" (503 with Retry-After: 1). ``down()`` closes the port (connections
    refused), ``up()`` opens it again on the same port."""

    secret: str = SECRET
    mode: str = "ok"
    hang_seconds: float = 3.0
    delivered: list[Delivery] = field(default_factory=list)
    attempts: int = 0
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self
        verifier = Webhook(self.secret)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts += 1
                    mode = receiver.mode
                if mode == "hang":
                    time.sleep(receiver.hang_seconds)
                    self._answer(500)
                    return
                if mode in ("500", "410"):
                    self._answer(int(mode))
                    return
                if mode == "retry-after":
                    self._answer(503, {"Retry-After": "1"})
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verifier.verify(raw, headers)
                    verified = True
                except Exception:
                    verified = False
                delivery = Delivery(
                    headers.get("webhook-id", ""), json.loads(raw), verified, time.time()
                )
                with receiver._lock:
                    receiver.delivered.append(delivery)
                self._answer(204)

            def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def ids(self) -> list[str]:
        with self._lock:
            return [d.msg_id for d in self.delivered]


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    """A started receiver; stopped after."""
    r = Receiver(**options)
    r.up()
    try:
        yield r
    finally:
        r.down()


def closed_port() -> int:
    """A loopback port nobody listens on (connections refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhooks_toml(
    url: str, *, name: str = "crm", events: str = '["*"]', secret: str = SECRET
) -> str:
    return f'[[webhooks]]\nname = "{name}"\nurl = "{url}"\nevents = {events}\nsecret = "{secret}"\n'
