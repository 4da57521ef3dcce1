"""The simulator's command channel: a loopback TCP stand-in for WM_COPYDATA, and its client.

Protocol: the client connects to the port named in ``microsip-sim.json`` (in the simulator's
folder) and sends one UTF-8 line, either a JSON object ``{"dwData": 1, "text": "/answer"}``
(dwData 1: run now, 2: queue, 3.20+, facts §1.4) or ``{"close": true}`` (MicroSIP's WM_CLOSE, as
``microsip.exe /exit`` sends it, facts §1.2), or a bare line of text (a command with dwData 1).
The reply is one JSON line: ``{"result": 0}`` (accepted; like SendMessage's value it does not say
that the command succeeded), ``{"result": 1}`` (dropped or ignored), or ``{"error": "..."}`` for
a command the library's grammar refuses (/reset, control characters ...), which MicroSIP would
have acted on but the bridge never sends.

Like WM_COPYDATA within a desktop session, the channel has no authentication: it listens on
127.0.0.1 only, and the state file is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microsip_bridge.errors import (
    BridgeError,
    CommandError,
    FileFormatError,
    MicroSIPNotRunningError,
    NotFoundError,
    UnsafeInputError,
)
from microsip_bridge.fileio import atomic_write, read_limited
from microsip_bridge.microsip.commands import S20, Channel, Command, Verb, Version, parse
from microsip_bridge.sim.folder import SimFolder
from microsip_bridge.sim.simulator import Simulator

# A command is at most 1024 UTF-16 units (commands.MAX_COMMAND_CHARS): 4 KiB of UTF-8 at worst,
# plus the JSON around it.
MAX_REQUEST_BYTES = 16 * 1024
MAX_STATE_BYTES = 4096
READ_TIMEOUT = 5.0
DEFAULT_CLIENT_TIMEOUT = 120.0  # a synchronous command waits for its hooks (10 s each at most)


class _Handler(socketserver.StreamRequestHandler):
    timeout = READ_TIMEOUT

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        try:
            line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
        except OSError:
            return
        reply = server.channel.handle(line)
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps(reply, ensure_ascii=True).encode("ascii") + b"\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], channel: CommandChannel) -> None:
        self.channel = channel
        super().__init__(address, _Handler)


class CommandChannel:
    """Serves a :class:`Simulator`'s commands on 127.0.0.1 (port 0: any free port) while it runs,
    and advertises the port in the folder's ``microsip-sim.json``."""

    def __init__(self, sim: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise BridgeError(f"the simulator's channel listens on 127.0.0.1 only, not {host!r}")
        self.sim = sim
        self.host = "127.0.0.1"
        self.port = port
        self.close_requested = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def folder(self) -> SimFolder:
        return self.sim.folder

    def start(self) -> tuple[str, int]:
        """Listen, serve in a background thread, and write the state file."""
        if self._server is not None:
            return self.host, self.port
        try:
            server = _Server((self.host, self.port), self)
        except OSError as exc:
            raise BridgeError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, name="microsip-sim-channel", daemon=True
        )
        self._thread.start()
        state = {
            "host": self.host,
            "port": self.port,
            "pid": os.getpid(),
            "version": str(self.sim.version),
        }
        atomic_write(self.folder.state_file, json.dumps(state).encode("utf-8"), backups=0)
        return self.host, self.port

    def close(self) -> None:
        """Stop serving and remove the state file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            data = json.loads(self.folder.state_file.read_text("utf-8"))
            if isinstance(data, dict) and data.get("port") == self.port:
                self.folder.state_file.unlink()

    def __enter__(self) -> CommandChannel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle(self, line: bytes) -> dict[str, Any]:
        """One request line in, one reply object out (see the module docstring)."""
        if len(line) > MAX_REQUEST_BYTES:
            return {"error": f"request longer than {MAX_REQUEST_BYTES} bytes"}
        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            return {"error": f"request is not UTF-8 (byte {exc.start})"}
        dw_data = 1
        if text.startswith("{"):
            try:
                request = json.loads(text)
            except json.JSONDecodeError as exc:
                return {"error": f"request is not valid JSON: {exc.msg} at {exc.pos}"}
            if not isinstance(request, dict):
                return {"error": "request must be a JSON object"}
            if request.get("close") is True:
                # WM_CLOSE: the main window closes and MicroSIP exits.
                self.close_requested.set()
                self.sim.stop()
                return {"result": 0}
            command = request.get("text")
            dw = request.get("dwData", 1)
            if not isinstance(command, str) or isinstance(dw, bool) or not isinstance(dw, int):
                return {"error": 'expected {"dwData": 1 or 2, "text": "..."}'}
            text, dw_data = command, dw
        try:
            return {"result": self.sim.command(text, dw_data=dw_data)}
        except BridgeError as exc:
            return {"error": str(exc)}


# --- the client -----------------------------------------------------------------------------------


def _address(folder: Path) -> tuple[str, int]:
    state_file = SimFolder(Path(folder)).state_file
    try:
        data = json.loads(read_limited(state_file, MAX_STATE_BYTES, "simulator state file"))
    except NotFoundError:
        raise NotFoundError(
            "no simulator is serving commands here (no microsip-sim.json; start one with "
            "`microsip-bridge sim --serve`)",
            path=folder,
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"not a simulator state file: {exc}", path=state_file) from None
    host = data.get("host") if isinstance(data, dict) else None
    port = data.get("port") if isinstance(data, dict) else None
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise FileFormatError('expected {"host": ..., "port": ...}', path=state_file)
    if host != "127.0.0.1" or not 0 < port < 65536:
        raise UnsafeInputError(
            f"refusing to connect to {host}:{port}: not loopback", path=state_file
        )
    return host, port


def _request(folder: Path, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    host, port = _address(folder)
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(data)
            reply = b""
            while not reply.endswith(b"\n") and len(reply) <= MAX_REQUEST_BYTES:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except ConnectionRefusedError:
        raise NotFoundError(
            f"the simulator at {host}:{port} is not running (stale microsip-sim.json)",
            path=folder,
        ) from None
    except TimeoutError:
        raise BridgeError(
            f"the simulator at {host}:{port} did not answer in {timeout:g} s"
        ) from None
    except OSError as exc:
        raise BridgeError(f"cannot talk to the simulator at {host}:{port}: {exc}") from None
    try:
        answer = json.loads(reply.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BridgeError(f"the simulator at {host}:{port} sent a garbled reply") from None
    if not isinstance(answer, dict):
        raise BridgeError(f"the simulator at {host}:{port} sent a garbled reply")
    return answer


def send_command(
    folder: Path | str,
    text: str,
    asynchronous: bool = True,
    *,
    timeout: float = DEFAULT_CLIENT_TIMEOUT,
) -> int:
    """Send a MicroSIP command to the simulator serving ``folder``; returns what SendMessage
    would (0 accepted, 1 dropped or ignored: facts §1.4). ``asynchronous`` is dwData=2.

    Raises NotFoundError when no simulator serves the folder, and CommandError when the
    simulator refuses the text (the library's grammar refuses it).
    """
    payload = {"dwData": 2 if asynchronous else 1, "text": text}
    answer = _request(Path(folder), payload, timeout)
    if "error" in answer:
        raise CommandError(str(answer["error"]))
    result = answer.get("result")
    if isinstance(result, bool) or not isinstance(result, int):
        raise BridgeError("the simulator sent a reply without a result")
    return result


def request_close(folder: Path | str, *, timeout: float = DEFAULT_CLIENT_TIMEOUT) -> None:
    """Ask the simulator serving ``folder`` to exit (MicroSIP's WM_CLOSE, facts §1.2)."""
    _request(Path(folder), {"close": True}, timeout)


def forward_command_line(folder: Path | str, text: str) -> int | None:
    """What ``microsip.exe <text>`` does when an instance may be running (facts §1.2, §1.3).

    With a simulator serving ``folder``: ``/exit`` closes it, an empty line or ``/minimized``
    does nothing, anything else is forwarded with dwData=1; the return value is SendMessage's
    (0 for /exit and the no-ops). Without one: None, and the caller starts the simulator with the
    command, except that ``/exit``, ``/answer`` and ``/hangupall`` then end at once (returns 0).
    """
    cmd = parse(text, channel=Channel.COMMAND_LINE)
    try:
        _address(Path(folder))
        running = True
    except NotFoundError:
        running = False
    if running:
        try:
            if cmd.verb is Verb.EXIT:
                request_close(folder)
                return 0
            if cmd.verb in (Verb.SHOW, Verb.START_MINIMIZED, Verb.START_HIDDEN):
                return 0
            return send_command(folder, text, asynchronous=False)
        except NotFoundError:
            running = False  # a stale state file: as if none ran
    if cmd.verb in (Verb.EXIT, Verb.ANSWER, Verb.HANGUP_ALL):
        return 0
    return None


def served_version(folder: Path | str) -> Version | None:
    """The MicroSIP version the simulator serving ``folder`` plays (None: none serves it, or
    its state file does not say)."""
    try:
        data = json.loads(
            read_limited(
                SimFolder(Path(folder)).state_file, MAX_STATE_BYTES, "simulator state file"
            )
        )
    except (BridgeError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    text = data.get("version") if isinstance(data, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return Version.parse(text)
    except BridgeError:
        return None


@dataclass(slots=True)
class SimulatorTransport:
    """The controller transport for a folder served by the simulator: its channel stands in
    for WM_COPYDATA, with dwData 2 on 3.20+ and 1 before, as for the real window."""

    folder: Path
    version: Version | None = None
    timeout: float = 10.0
    name: str = "simulator"

    def send(self, command: Command) -> int:
        asynchronous = self.version is not None and self.version >= S20
        try:
            return send_command(self.folder, command.text, asynchronous, timeout=self.timeout)
        except NotFoundError as exc:
            raise MicroSIPNotRunningError(exc.message, path=exc.path) from None
