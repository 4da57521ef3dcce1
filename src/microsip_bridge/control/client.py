"""The control commands' client of a running daemon: ``POST /api/v1/control/{verb}`` over loopback,
found as the hook finds the daemon (``daemon.json`` and the token file in the bridge's home)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microsip_bridge.control.service import ControlResult
from microsip_bridge.errors import (
    BridgeError,
    CommandDroppedError,
    MicroSIPNotRunningError,
    RateLimitedError,
    RefusedCommandError,
)
from microsip_bridge.wire import DAEMON_FILE, TOKEN_NAME

CONNECT_TIMEOUT = 2.0
# A dial may wait out the cooldown and MicroSIP's answer: generous, but bounded.
ANSWER_TIMEOUT = 60.0
_MAX_ANSWER = 64 * 1024


def find_daemon(home: Path) -> tuple[str, int, str] | None:
    """``(host, port, token)`` of the daemon published in ``home``, or None when there is none
    (no daemon.json, or no token): the caller then talks to MicroSIP itself."""
    try:
        info = json.loads((home / DAEMON_FILE).read_text("utf-8"))
        token = (home / TOKEN_NAME).read_text("utf-8").strip()
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not token:
        return None
    host, port = info.get("host"), info.get("port")
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        return None
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: reach it on loopback
        host = "::1" if host == "::" else "127.0.0.1"
    return host, port, token


def send_via_daemon(
    daemon: tuple[str, int, str], verb: str, args: Mapping[str, Any]
) -> ControlResult | None:
    """Send one control command through the daemon; None when the daemon does not answer (it
    died without removing daemon.json). Raises the error the daemon's answer stands for."""
    host, port, token = daemon
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    body = json.dumps(dict(args)).encode("utf-8")
    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
        except OSError:
            return None
        if conn.sock is not None:
            conn.sock.settimeout(ANSWER_TIMEOUT)
        conn.request(
            "POST",
            f"/api/v1/control/{verb}",
            body=body,
            headers={
                "Host": authority,
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
        response = conn.getresponse()
        status = response.status
        raw = response.read(_MAX_ANSWER)
        retry_after = response.getheader("Retry-After") or "1"
    except (OSError, http.client.HTTPException) as exc:
        raise BridgeError(f"the daemon at {authority} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = {}
    if status == 202 and isinstance(data, dict):
        call_id = data.get("call_id")
        return ControlResult(
            call_id if isinstance(call_id, str) else None, str(data.get("command", "")), "daemon"
        )
    detail = _detail(data) or f"HTTP {status}"
    if status == 409:
        raise MicroSIPNotRunningError(detail)
    if status == 422:
        raise RefusedCommandError(detail)
    if status == 503:
        raise CommandDroppedError(detail)
    if status == 429:
        raise RateLimitedError(
            detail, retry_after=float(retry_after) if retry_after.isdigit() else 1.0
        )
    raise BridgeError(f"the daemon refused the command: {detail}")


def _detail(data: object) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI's validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
        return "; ".join(parts)
    return ""
