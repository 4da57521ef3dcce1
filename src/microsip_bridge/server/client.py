"""Reach the running daemon from another process: find it by daemon.json, call its API (stdlib).

Commands such as ``microsip-bridge open`` import this instead of the web stack, so they start
as fast as the rest of the CLI.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

from microsip_bridge.errors import BridgeError, DaemonNotRunningError
from microsip_bridge.server.security import token_path, valid_token
from microsip_bridge.wire import DAEMON_FILE, parse_json

_HEALTH_TIMEOUT = 1.0
API_TIMEOUT = 10.0
NOT_RUNNING = "the daemon is not running (start it with `microsip-bridge serve`)"


def daemon_file(home: Path) -> Path:
    return home / DAEMON_FILE


def authority(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_daemon_file(home: Path) -> dict[str, Any] | None:
    """What ``daemon.json`` says (None: no file, or not ours)."""
    try:
        data = parse_json(daemon_file(home).read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def running_daemon(home: Path) -> dict[str, Any] | None:
    """The ``daemon.json`` of a daemon that answers its health check, or None (no file, or a
    daemon that died without removing it)."""
    info = read_daemon_file(home)
    if info is None:
        return None
    host, port = info.get("host"), info.get("port")
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    conn = http.client.HTTPConnection(host, port, timeout=_HEALTH_TIMEOUT)
    try:
        conn.request("GET", "/api/v1/health", headers={"Host": authority(host, port)})
        ok = conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return info if ok else None


def call_api(
    home: Path, method: str, path: str, body: object = None, *, timeout: float = API_TIMEOUT
) -> tuple[int, Any]:
    """Call the running daemon of ``home`` with its token: the status and the JSON answer (None
    when there is none). DaemonNotRunningError when no daemon runs; BridgeError when the token
    cannot be read or the daemon stops answering."""
    info = running_daemon(home)
    if info is None:
        raise DaemonNotRunningError(NOT_RUNNING)
    try:
        token = token_path(home).read_text("ascii", errors="replace").strip()
    except OSError as exc:
        raise BridgeError(f"cannot read the token: {exc.strerror}", path=token_path(home)) from None
    if not valid_token(token):
        raise BridgeError("the token file is damaged; restart the daemon", path=token_path(home))
    host, port = info["host"], info["port"]
    headers = {"Host": authority(host, port), "Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BridgeError(f"the daemon at {authority(host, port)} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        answer = parse_json(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        answer = None
    return response.status, answer


def new_login_link(home: Path) -> str:
    """A fresh one-time dashboard login link from the running daemon of ``home``."""
    status, answer = call_api(home, "POST", "/api/v1/login-links")
    url = answer.get("url") if isinstance(answer, dict) else None
    if status != 201 or not isinstance(url, str):
        detail = answer.get("detail") if isinstance(answer, dict) else None
        raise BridgeError(f"the daemon refused a login link ({status}): {detail or 'no reason'}")
    return url
