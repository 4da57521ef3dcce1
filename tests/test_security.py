"""The daemon's security model against a real uvicorn server on loopback: every route of the app
needs the token or a session (401), a forged Host is refused (421), a foreign Origin is refused
(403), WebSockets alike and before any message; CORS and Private Network Access only for allowed
origins; loopback unless --public."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.routing import iter_route_contexts
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from microsip_bridge.config import DEFAULTS, Config
from microsip_bridge.errors import BridgeError
from microsip_bridge.server import auth
from microsip_bridge.server.app import HEALTH_PATH, create_app
from microsip_bridge.server.cors import normalize_origin, own_origins
from microsip_bridge.server.security import is_loopback
from microsip_bridge.server.settings import DaemonSettings
from tests.cli_support import run

TEST_WS_PATH = "/api/v1/test-ws"
FOREIGN = "http://evil.example"
WRONG_TOKEN = "W" * 43
# What a path parameter gets: any value reaches the route's checks the same way.
PARAM = re.compile(r"\{([^}:]+)(:[^}]*)?\}")


@dataclass
class Served:
    """An app served by uvicorn on a loopback port, with the daemon's token."""

    app: FastAPI
    port: int
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.base

    def client(self, **headers: str) -> httpx2.Client:
        return httpx2.Client(base_url=self.base, headers=headers, timeout=30)

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


async def _test_ws(websocket: WebSocket) -> None:
    """A WebSocket route as the house writes them: the check, then accept and speak."""
    if await auth.accept_authorized(websocket):
        await websocket.send_json({"event": "ring", "cursor": 1})
        await websocket.close()


async def _test_ws_by_hand(websocket: WebSocket) -> None:
    """The same with the check written out (a close before accepting: a 403)."""
    if not auth.authorized(websocket):
        await websocket.close(code=1008)
        return
    await websocket.accept()
    await websocket.send_json({"event": "ring", "cursor": 1})
    await websocket.close()


@contextmanager
def served(home: Path, **changes: object) -> Iterator[Served]:
    """The daemon's app (plus a tiny WebSocket route) served by a real uvicorn on loopback."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "spool_interval": 0.2}
    settings = DaemonSettings(home=home).with_(**{**values, **changes})
    app = create_app(settings)
    app.add_api_websocket_route(TEST_WS_PATH, _test_ws)
    app.add_api_websocket_route(TEST_WS_PATH + "-by-hand", _test_ws_by_hand)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise AssertionError("the server did not start")
            threading.Event().wait(0.02)
        yield Served(app, port, app.state.token)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def daemon(bridge_home: Path) -> Iterator[Served]:
    with served(bridge_home) as it:
        yield it


def routes(app: FastAPI) -> list[tuple[BaseRoute, str]]:
    """Every route the app serves, with its full path (included routers flattened) and its path
    parameters filled in: any value reaches the route's checks the same way."""
    return [
        (context.original_route, PARAM.sub("x1", context.path or ""))
        for context in iter_route_contexts(app.routes)
    ]


def http_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route of the app."""
    return [
        (method, path)
        for route, path in routes(app)
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def ws_routes(app: FastAPI) -> list[str]:
    return [path for route, path in routes(app) if isinstance(route, WebSocketRoute)]


def send(http: httpx2.Client, method: str, path: str, **headers: str) -> httpx2.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return http.request(method, path, json=body, headers=headers)


# --- every route -------------------------------------------------------------------------------


def test_the_routes_are_found(daemon: Served) -> None:
    # The iteration below sees what the app serves (so routes added later are covered too).
    methods_paths = http_routes(daemon.app)
    assert ("GET", HEALTH_PATH) in methods_paths
    assert ("POST", "/api/v1/hook-events") in methods_paths
    assert ("POST", "/api/v1/login-links") in methods_paths
    assert ("GET", "/") in methods_paths
    assert TEST_WS_PATH in ws_routes(daemon.app)


# The directory MicroSIP fetches takes a key of its own, never the token: its refusals of the
# token and the session are tested in tests/test_directory_serve.py.
DIRECTORY_PATHS = frozenset({"/directory.json", "/directory.xml"})


def own_credentials(daemon: Served, path: str) -> str:
    """The query string that opens ``path`` beside the bearer token: the directory's key."""
    if path in DIRECTORY_PATHS:
        from microsip_bridge.directory.key import ensure_key

        return "?key=" + ensure_key(daemon.app.state.settings.home)
    return ""


def test_every_route_needs_the_token_or_a_session(daemon: Served) -> None:
    with daemon.client() as http:
        for method, path in http_routes(daemon.app):
            if path == HEALTH_PATH or path in DIRECTORY_PATHS:
                continue
            for headers in (
                {},
                daemon.bearer(WRONG_TOKEN),
                {"Authorization": "Basic dXNlcjpwYXNz"},
                {"Cookie": f"{daemon.app.state.session_cookie}={WRONG_TOKEN}"},
                # A wrong token is refused even with a good session beside it.
                {**daemon.bearer(WRONG_TOKEN), "Cookie": good_cookie(daemon)},
            ):
                answer = send(http, method, path, **headers)
                assert answer.status_code == 401, (method, path, headers, answer.text)
            # The refusals came from the check: the right token gets past it.
            answer = send(http, method, path, **daemon.bearer())
            assert answer.status_code not in (401, 403, 421), (method, path, answer.text)


def test_every_route_refuses_a_forged_host_even_with_the_token(daemon: Served) -> None:
    with daemon.client() as http:
        for method, path in http_routes(daemon.app):
            for host in ("evil.example", f"evil.example:{daemon.port}", "127.0.0.1.evil.example"):
                answer = send(http, method, path, Host=host, **daemon.bearer())
                assert answer.status_code == 421, (method, path, host, answer.text)
                assert "Host" in answer.json()["detail"]


def test_every_route_refuses_a_foreign_origin_even_with_the_token(daemon: Served) -> None:
    foreign = [
        FOREIGN,
        "null",  # sandboxed frames, file:// pages
        "http://localhost",  # another program's page on loopback: port 80, not ours
        f"http://localhost:{daemon.port + 1}",
        f"https://127.0.0.1:{daemon.port}",  # another scheme is another origin
        f"http://127.0.0.1:{daemon.port}.evil.example",
    ]
    with daemon.client() as http:
        for method, path in http_routes(daemon.app):
            for origin in foreign:
                answer = send(http, method, path, Origin=origin, **daemon.bearer())
                assert answer.status_code == 403, (method, path, origin, answer.text)
                assert "access-control-allow-origin" not in answer.headers
            own = send(
                http,
                method,
                path + own_credentials(daemon, path),
                Origin=daemon.origin,
                **daemon.bearer(),
            )
            assert own.status_code not in (401, 403, 421), (method, path, own.text)


def ws_uri(daemon: Served, path: str, host: str | None = None) -> str:
    return f"ws://{host or f'127.0.0.1:{daemon.port}'}{path}"


def ws_refused(
    daemon: Served,
    path: str,
    *,
    host: str | None = None,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    """Open the WebSocket; the HTTP status of the refused handshake (fails if it opens)."""
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    try:
        with ws_connect(
            ws_uri(daemon, path, host),
            sock=sock,
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=10,
        ) as ws:
            raise AssertionError(f"{path} opened and sent {ws.recv(timeout=5)!r}")
    except InvalidStatus as refusal:
        return refusal.response.status_code


def test_every_websocket_is_refused_before_any_message(daemon: Served) -> None:
    cookie = f"{daemon.app.state.session_cookie}={WRONG_TOKEN}"
    assert ws_refused(daemon, TEST_WS_PATH) == 401
    for path in ws_routes(daemon.app):
        assert ws_refused(daemon, path) in (401, 403), path
        assert ws_refused(daemon, path, headers=daemon.bearer(WRONG_TOKEN)) in (401, 403)
        assert ws_refused(daemon, path, headers={"Cookie": cookie}) in (401, 403)
        # Cross-site WebSocket hijacking: the browser sends the cookie; the Origin betrays it.
        for origin in (FOREIGN, "null", "http://localhost"):
            status = ws_refused(daemon, path, origin=origin, headers=daemon.bearer())
            assert status == 403, (path, origin)
        forged = ws_refused(
            daemon, path, host=f"evil.example:{daemon.port}", headers=daemon.bearer()
        )
        assert forged == 421, path


def test_the_test_websocket_opens_with_the_token_or_a_session(daemon: Served) -> None:
    # So that the refusals above are the checks' doing.
    for path, headers in (
        (TEST_WS_PATH, daemon.bearer()),
        (TEST_WS_PATH, {"Cookie": good_cookie(daemon)}),
        (TEST_WS_PATH + "-by-hand", daemon.bearer()),
    ):
        with ws_connect(
            ws_uri(daemon, path),
            origin=daemon.origin,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=10,
        ) as ws:
            assert '"ring"' in str(ws.recv(timeout=10))


# --- CORS and Private Network Access ------------------------------------------------------------


def preflight(http: httpx2.Client, origin: str, pna: bool = True) -> httpx2.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    if pna:
        headers["Access-Control-Request-Private-Network"] = "true"
    return http.options("/api/v1/hook-events", headers=headers)


def test_cors_and_private_network_access_only_for_allowed_origins(bridge_home: Path) -> None:
    crm = "https://crm.example.com"
    with (
        served(bridge_home, allowed_origins=f"{crm}, http://intranet:8080") as daemon,
        daemon.client() as http,
    ):
        for origin in (crm, f"http://localhost:{daemon.port}", daemon.origin):
            answer = preflight(http, origin)
            assert answer.status_code == 204, origin
            assert answer.headers["access-control-allow-origin"] == origin
            assert answer.headers["access-control-allow-credentials"] == "true"
            assert answer.headers["access-control-allow-private-network"] == "true"
            assert "Authorization" in answer.headers["access-control-allow-headers"]
            assert "POST" in answer.headers["access-control-allow-methods"]
            assert "Origin" in answer.headers["vary"]
        plain = preflight(http, crm, pna=False)
        assert "access-control-allow-private-network" not in plain.headers
        for origin in (
            FOREIGN,
            "https://crm.example.com.evil.example",
            "http://crm.example.com",
        ):
            refused = preflight(http, origin)
            assert refused.status_code == 403, origin
            assert "access-control-allow-private-network" not in refused.headers
            assert "access-control-allow-origin" not in refused.headers
        # A real request from the allowed page: CORS headers naming it, never "*".
        answer = http.get(HEALTH_PATH, headers={"Origin": crm})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == crm
        assert "Origin" in answer.headers["vary"]
        # No Origin (the hook, curl): no CORS headers at all.
        assert "access-control-allow-origin" not in http.get(HEALTH_PATH).headers


# --- hosts and --public -------------------------------------------------------------------------


def test_a_public_daemon_accepts_its_addresses_and_configured_names_only(
    bridge_home: Path,
) -> None:
    with (
        served(bridge_home, host="0.0.0.0", public=True, allowed_hosts="pc-42.office.lan") as d,
        d.client(**d.bearer()) as http,
    ):
        for host, status in (
            ("192.168.1.5:5797", 200),  # an address: DNS rebinding needs a name
            ("[fe80::1]:5797", 200),
            ("pc-42.office.lan:5797", 200),
            ("PC-42.Office.LAN.", 200),
            ("evil.example", 421),
            ("pc-43.office.lan", 421),
        ):
            answer = http.get("/api/v1/openapi.json", headers={"Host": host})
            assert answer.status_code == status, host
        # The dashboard on a public daemon: its own origin is the name the request uses.
        own = http.get(
            "/",
            headers={"Host": "pc-42.office.lan:5797", "Origin": "http://pc-42.office.lan:5797"},
        )
        assert own.status_code == 200
        other = http.get(
            "/", headers={"Host": "pc-42.office.lan:5797", "Origin": "http://192.168.1.9:5797"}
        )
        assert other.status_code == 403


def test_a_loopback_daemon_accepts_no_address_but_loopback(daemon: Served) -> None:
    with daemon.client(**daemon.bearer()) as http:
        for host, status in (
            (f"127.0.0.1:{daemon.port}", 200),
            (f"localhost:{daemon.port}", 200),
            (f"[::1]:{daemon.port}", 200),
            ("192.168.1.5", 421),
            ("", 421),
        ):
            assert http.get("/api/v1/openapi.json", headers={"Host": host}).status_code == status


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "192.168.1.5"], "--host 192.168.1.5 is not a loopback address"),
        (["--host", "0.0.0.0"], "add --public"),
        (["--host", "::"], "add --public"),
        (["--host", "pc-42.office.lan"], "add --public"),
    ],
)
def test_serve_refuses_another_address_without_public(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "serve", "--port", "0", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


def test_serve_refuses_a_public_host_setting_without_the_public_setting(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    (bridge_home / "config.toml").write_text('host = "0.0.0.0"\n')
    code, _, err = run(capsys, "serve", "--port", "0")
    assert code == 2
    assert "the host setting" in err and "config.toml" in err


def test_the_settings_refuse_another_address_without_public(tmp_path: Path) -> None:
    with pytest.raises(BridgeError, match="needs --public"):
        DaemonSettings(home=tmp_path, host="10.0.0.1")
    assert DaemonSettings(home=tmp_path, host="10.0.0.1", public=True).public
    assert DaemonSettings(home=tmp_path, host="::1").host == "::1"
    with pytest.raises(BridgeError, match=r"allowed_origins: 'crm\.example\.com' is not an"):
        DaemonSettings(home=tmp_path, allowed_origins="crm.example.com")
    with pytest.raises(BridgeError, match="allowed_hosts"):
        DaemonSettings(home=tmp_path, allowed_hosts="http://pc-42/")
    config = Config({**DEFAULTS, "public": True, "host": "0.0.0.0"}, {}, tmp_path)
    assert DaemonSettings.from_config(config, tmp_path).public


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- the parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("http://127.0.0.1:5797", "http://127.0.0.1:5797"),
        ("HTTP://LocalHost", "http://localhost:80"),
        ("http://localhost:80", "http://localhost:80"),
        ("https://crm.example.com", "https://crm.example.com:443"),
        ("http://[::1]:5797", "http://[::1]:5797"),
        ("null", None),
        ("", None),
        ("file://", None),
        ("ftp://example.com", None),
        ("http://example.com/path", None),
        ("http://user@example.com", None),
        ("http://a:b:c", None),
        ("http://[::1", None),
        ("http://[::1]x", None),
        ("http://example.com:0", None),
        ("http://example.com:65536", None),
        ("http://example.com:8o", None),
    ],
)
def test_origins_are_compared_in_one_form(origin: str, normal: str | None) -> None:
    assert normalize_origin(origin) == normal


@given(st.text(max_size=80))
def test_any_origin_header_is_parsed_without_error_and_stably(text: str) -> None:
    normal = normalize_origin(text)
    if normal is not None:
        assert normalize_origin(normal) == normal
        assert normal.startswith(("http://", "https://"))


@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    st.integers(1, 65535),
)
def test_an_origin_equals_itself_however_it_is_written(scheme: str, host: str, port: int) -> None:
    written = f"{scheme.upper()}://{host.upper()}:{port}"
    assert normalize_origin(written) == normalize_origin(f"{scheme}://{host}:{port}")


def test_the_daemons_own_origins() -> None:
    assert own_origins(5797) == {
        "http://127.0.0.1:5797",
        "http://localhost:5797",
        "http://[::1]:5797",
    }


def good_cookie(daemon: Served) -> str:
    """A session cookie as the login route would set it."""
    return f"{daemon.app.state.session_cookie}={daemon.app.state.sessions.open()}"
