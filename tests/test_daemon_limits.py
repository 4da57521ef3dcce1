"""The daemon under hostile clients: bodies too big or never ending, and the API's description
kept behind the token; against a real uvicorn server on a raw socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.routing import APIRoute

from microsip_bridge import wire
from microsip_bridge.server.app import MAX_BODY_BYTES, create_app
from microsip_bridge.server.guard import GuardedH11Protocol
from tests.daemon_support import live_daemon, settings_for, stored_events

# More than loopback's socket buffers hold (a few MB each way): a daemon that goes on reading
# takes all of it; one that stops reading makes the sender fail long before.
FLOOD_BYTES = 50 * 1024 * 1024
PIECE = b"x" * 65536


class Daemon:
    def __init__(self, address: tuple[str, int], token: str, counted: list[int]) -> None:
        self.address = address
        self.token = token
        self.counted = counted

    def bytes_read(self) -> int:
        return sum(self.counted)


@pytest.fixture
def daemon(bridge_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    counted: list[int] = []
    original = GuardedH11Protocol.data_received

    def counting(self: GuardedH11Protocol, data: bytes) -> None:
        counted.append(len(data))
        original(self, data)

    # What the daemon takes off its sockets, whatever the app does with it.
    monkeypatch.setattr(GuardedH11Protocol, "data_received", counting)
    with live_daemon(bridge_home) as running:
        address = running.wait_listening()
        yield Daemon(address, (bridge_home / "token").read_text().strip(), counted)


def flood(address: tuple[str, int], head: bytes, *, chunked: bool) -> tuple[int, bytes]:
    """Send ``head`` then body pieces up to :data:`FLOOD_BYTES` (chunks that never end, or a
    body shorter than declared) whatever the daemon answers, until it closes the connection;
    returns the body bytes sent and the daemon's answer."""
    sock = socket.create_connection(address, timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    answer = bytearray()

    def read() -> None:
        try:
            while data := sock.recv(65536):
                answer.extend(data)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    piece = b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
    sent = 0
    try:
        sock.sendall(head)
        while sent < FLOOD_BYTES:
            sock.sendall(piece)
            sent += len(PIECE)
        sock.shutdown(socket.SHUT_WR)  # all of it went: the daemon read every byte
    except OSError:
        pass  # closed on us: what a daemon that stopped reading does
    reader.join(30)
    sock.close()
    return sent, bytes(answer)


def request_head(*lines: str) -> bytes:
    return ("\r\n".join([f"POST {wire.HOOK_EVENTS_PATH} HTTP/1.1", *lines]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("chunked, never ending", 413),
        ("a gigabyte declared", 413),
        ("chunked, no token", 401),
        ("chunked, from another host", 421),
    ],
)
def test_a_body_too_big_is_refused_at_the_limit_and_the_rest_never_read(
    daemon: Daemon, bridge_home: Path, case: str, status: int
) -> None:
    host = "evil.example" if "host" in case else "127.0.0.1"
    lines = [f"Host: {host}", "Content-Type: application/json"]
    if "no token" not in case:
        lines.append(f"Authorization: Bearer {daemon.token}")
    chunked = "chunked" in case
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {2**30}")
    sent, answer = flood(daemon.address, request_head(*lines), chunked=chunked)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"connection: close" in answer.lower()
    # The daemon stopped reading near the limit (plus what its buffers took at once), so the
    # sender was cut off long before the end.
    assert daemon.bytes_read() < MAX_BODY_BYTES + 1024 * 1024
    assert sent < FLOOD_BYTES / 2
    assert stored_events(bridge_home) == []
    # And it still serves others.
    with httpx2.Client(headers={"Authorization": f"Bearer {daemon.token}"}) as client:
        base = f"http://{daemon.address[0]}:{daemon.address[1]}"
        response = client.post(base + wire.HOOK_EVENTS_PATH, json=wire.make_record("ring", "1"))
    assert response.status_code == 202


def test_a_chunked_record_within_the_limit_is_accepted(daemon: Daemon, bridge_home: Path) -> None:
    body = wire.encode_record(wire.make_record("incoming", "5551234")).encode()

    def pieces() -> Iterator[bytes]:
        yield from (body[i : i + 7] for i in range(0, len(body), 7))

    with httpx2.Client(headers={"Authorization": f"Bearer {daemon.token}"}) as client:
        base = f"http://{daemon.address[0]}:{daemon.address[1]}"
        response = client.post(base + wire.HOOK_EVENTS_PATH, content=pieces())
    assert response.status_code == 202, response.text
    assert [e.number for e in stored_events(bridge_home)] == ["5551234"]


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(daemon: Daemon) -> None:
    base = f"http://{daemon.address[0]}:{daemon.address[1]}"
    padded = b'{"pad": "' + b"x" * (MAX_BODY_BYTES - 11) + b'"}'
    with httpx2.Client(headers={"Authorization": f"Bearer {daemon.token}"}) as client:
        for body, status in ((padded, 422), (padded + b" ", 413)):
            response = client.post(base + wire.HOOK_EVENTS_PATH, content=iter([body]))
            assert response.status_code == status, (len(body), response.text)


# --- the API's description ---------------------------------------------------------------------


def test_the_api_description_needs_the_token_and_health_does_not(daemon: Daemon) -> None:
    base = f"http://{daemon.address[0]}:{daemon.address[1]}"
    with httpx2.Client(base_url=base) as anonymous:
        assert anonymous.get("/api/v1/health").status_code == 200
        for path in ("/openapi.json", "/redoc", "/docs/oauth2-redirect"):
            assert anonymous.get(path).status_code == 404, path
        refused = anonymous.get("/api/v1/openapi.json")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        docs = anonymous.get("/docs")
        assert docs.status_code == 401
        assert "microsip-bridge open" in docs.json()["detail"]
        assert "\n" not in docs.json()["detail"]
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {daemon.token}"}) as http:
        document = http.get("/api/v1/openapi.json").json()
        body = document["paths"][wire.HOOK_EVENTS_PATH]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == wire.record_schema()
        assert not {"/docs", "/api/v1/openapi.json"} & set(document["paths"])
        page = http.get("/docs")
        assert page.status_code == 200
        assert "/api/v1/openapi.json" in page.text


def test_every_route_is_in_the_readme(bridge_home: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    app = create_app(settings_for(bridge_home))
    try:
        routes = [r for r in app.routes if isinstance(r, APIRoute)]
        assert len(routes) >= 4
        for route in routes:
            for method in route.methods:
                assert f"`{method} {route.path}`" in readme, (method, route.path)
    finally:
        app.state.engine.dispose()
