"""Run the daemon: bind, migrate, ingest, serve with uvicorn, publish daemon.json, stop cleanly.

Order of a start (:func:`serve`):

1. take the home's lock (``daemon.lock``): a second daemon for the same home says which pid
   holds it and exits non-zero; make the home private to the user (0700);
2. bind the socket (a clear error when the port is taken);
3. migrate the store, reload open calls, ingest the spool (errors are one line, not a trace);
4. serve; once listening, write ``<home>/daemon.json`` (0600: host, port, pid, token file) so the
   hook finds us, announce where we listen with a one-time dashboard login link, and ingest
   what was spooled while we started.

Ctrl-C or SIGTERM (SIGBREAK on Windows) at any moment, start-up included, stops it cleanly
(:mod:`.lifecycle`): the step in progress finishes, ``daemon.json`` is removed first, so new
hooks spool instead of knocking on a closing door; then uvicorn finishes the requests in flight
(they wait for their commits), and the ingestor commits what is queued. The process exits 0.
A daemon killed hard leaves ``daemon.json`` behind: the hook's connection is refused at once and
it spools, and the next start replaces the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from microsip_bridge import __version__
from microsip_bridge.errors import BridgeError
from microsip_bridge.fileio import atomic_write, private_dir
from microsip_bridge.server.client import (
    authority,
    daemon_file,
    read_daemon_file,
    running_daemon,
)
from microsip_bridge.server.guard import (
    BurstFilter,
    GuardedH11Protocol,
    GuardedWebSocketProtocol,
    raise_fd_limit,
)
from microsip_bridge.server.lifecycle import (
    HomeLock,
    StopSignals,
    catch_stop_signals,
    release_stop_signals,
    stop_signals_caught,
)
from microsip_bridge.server.masking import MaskingFormatter
from microsip_bridge.server.security import is_loopback, token_path
from microsip_bridge.server.sessions import LOGIN_CODE_SECONDS, login_url
from microsip_bridge.server.settings import WILDCARD_HOSTS, DaemonSettings

if TYPE_CHECKING:
    from microsip_bridge.calls.feed import EventHub
    from microsip_bridge.calls.ingest import Ingestor

logger = logging.getLogger("microsip_bridge.daemon")

LOG_NAME = "daemon.log"
GRACEFUL_SHUTDOWN = 10  # seconds uvicorn waits for requests in flight
# The event WebSocket: a ping every 20 s, closed when no pong comes within 20 s more (a client
# that vanished without closing); clients send nothing, so a message is small; no compression
# (each client's deflate context would cost CPU for every event, times every client).
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0
WS_MAX_MESSAGE = 4096
# Seconds the clients of the event WebSocket get to be told (1001, with their cursor) at a stop.
FEED_CLOSE_TIMEOUT = 2.0
_HEALTH_TIMEOUT = 1.0

Announce = Callable[[str], None]


# --- daemon.json ------------------------------------------------------------------------------


def write_daemon_file(
    home: Path, host: str, port: int, *, database: str = "", mask_numbers: bool = True
) -> Path:
    """Publish where the daemon listens, atomically and readable by the user only; with the
    mask_numbers setting, which the hook follows for its own log."""
    path = daemon_file(home)
    info = {
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "url": f"http://{authority(host, port)}",
        "token_file": str(token_path(home)),
        "version": __version__,
        "started_at": time.time(),
        "database": database,
        "mask_numbers": mask_numbers,
    }
    atomic_write(path, (json.dumps(info, indent=2) + "\n").encode("utf-8"), backups=0)
    if os.name == "posix":
        path.chmod(0o600)
    return path


def remove_daemon_file(home: Path, pid: int | None = None) -> bool:
    """Remove ``daemon.json`` (only if it is ``pid``'s, when given); True if removed."""
    info = read_daemon_file(home)
    if info is None or (pid is not None and info.get("pid") != pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        daemon_file(home).unlink()
        return True
    return False


# --- the socket and the server ------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port). BridgeError with the
    reason when it cannot be had (the port is taken, the address is not ours...)."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BridgeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform == "win32":
            # Windows' SO_REUSEADDR would let another program steal the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            # Restart at once even while old connections linger in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = " (another microsip-bridge serve? try --port)" if port else ""
        raise BridgeError(f"cannot listen on {authority(host, port)}: {reason}{hint}") from None
    sock.set_inheritable(False)
    return sock


class DaemonServer(uvicorn.Server):
    """uvicorn's server plus ``daemon.json``: written once listening, removed before stopping.
    Signals stop it gracefully and are not re-raised afterwards (exit status 0)."""

    def __init__(
        self,
        config: uvicorn.Config,
        settings: DaemonSettings,
        *,
        announce: Announce | None = None,
        on_listening: Callable[[str, int], None] | None = None,
        feed: EventHub | None = None,
        login_link: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.feed = feed
        self.announce = announce
        self.on_listening = on_listening
        self.login_link = login_link
        self.address: tuple[str, int] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or self.should_exit:
            return
        bound = (sockets or [s for srv in self.servers for s in srv.sockets or ()])[0]
        name = bound.getsockname()
        host = self.settings.connect_host if self.settings.host in WILDCARD_HOSTS else name[0]
        self.address = (host, int(name[1]))
        write_daemon_file(
            self.settings.home,
            host,
            int(name[1]),
            database=self._database(),
            mask_numbers=self.settings.mask_numbers,
        )
        if self.announce is not None:
            self.announce(self._banner(host, int(name[1])))
        if self.on_listening is not None:
            self.on_listening(host, int(name[1]))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # First: new hooks spool instead of waiting for a daemon that is going away.
        remove_daemon_file(self.settings.home, os.getpid())
        if self.feed is not None:
            # Before uvicorn's own shutdown, which would close them all with a bare 1012: each
            # client hears that the daemon stops and which cursor to come back with.
            self.feed.close()
            await self.feed.wait_closed(FEED_CLOSE_TIMEOUT)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The Daemon's StopSignals, installed before start-up, handle the signals for the whole
        # run; uvicorn's own would re-raise them after a graceful stop (exit status 143).
        yield

    def request_stop(self, count: int) -> None:
        """A stop signal came: stop gracefully; a second one: stop now."""
        if count > 1:
            self.force_exit = True
        self.should_exit = True

    def _database(self) -> str:
        from microsip_bridge.store.engine import default_url, safe_url

        url = self.settings.database_url
        return safe_url(url) if url else str(default_url(self.settings.home))

    def _banner(self, host: str, port: int) -> str:
        ini = self.settings.ini
        where = f"http://{authority(host, port)}"
        shown_ini = str(ini) if ini is not None else "none (no reconciliation with [Calls])"
        bound = self.settings.host
        if bound in WILDCARD_HOSTS:
            # Say the truth: every interface, not loopback.
            every = authority(bound or "0.0.0.0", port)  # noqa: S104 - shown, not bound
            listening = f"listening on every address ({every}); local clients use {where}"
        else:
            listening = f"listening on {where}"
        lines = [f"microsip-bridge {__version__}: {listening} (pid {os.getpid()})"]
        if not is_loopback(bound):
            lines.append(
                "  WARNING: other machines can reach this daemon (--public); its API has no "
                "TLS, so the token, the login links and the calls cross the network in clear text"
            )
        if self.login_link is not None:
            lines.append(
                f"  dashboard:    {self.login_link(where)}  (works once, for "
                f"{LOGIN_CODE_SECONDS / 60:g} minutes; "
                "`microsip-bridge open` makes another)"
            )
        lines += [
            f"  database:     {self._database()}",
            f"  token:        {token_path(self.settings.home)}",
            f"  MicroSIP ini: {shown_ini}",
            "Press Ctrl-C to stop.",
        ]
        return "\n".join(lines)


def setup_logging(home: Path, level: int = logging.INFO, *, mask_numbers: bool = True) -> None:
    """The daemon's log: stderr and ``<home>/logs/daemon.log`` (rotated at 1 MiB, 3 kept), with
    the numbers in it masked when ``mask_numbers`` (server/masking.py)."""
    kind = MaskingFormatter if mask_numbers else logging.Formatter
    formatter = kind("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        folder = private_dir(home / "logs")
        handlers.append(
            logging.handlers.RotatingFileHandler(
                folder / LOG_NAME, maxBytes=1024 * 1024, backupCount=3, encoding="utf-8"
            )
        )
        if os.name == "posix":
            (folder / LOG_NAME).chmod(0o600)  # whatever the umask: it names callers
    except OSError as exc:
        print(f"microsip-bridge: cannot write {home / 'logs'}: {exc.strerror}", file=sys.stderr)
    bursts = BurstFilter()
    for handler in handlers:
        handler.addFilter(bursts)
    for name, lvl in (
        ("microsip_bridge", level),
        ("uvicorn", logging.WARNING),
        # asyncio logs each failed accept() with a traceback: one line per burst instead.
        ("asyncio", logging.WARNING),
    ):
        target = logging.getLogger(name)
        for handler in list(target.handlers):
            if getattr(handler, "_microsip_bridge", False):
                target.removeHandler(handler)
                handler.close()
        for handler in handlers:
            handler.setFormatter(formatter)
            handler._microsip_bridge = True  # type: ignore[attr-defined]
            target.addHandler(handler)
        target.setLevel(lvl)
        target.propagate = False


class Daemon:
    """One run of the daemon (what ``serve`` does), controllable from another thread.

    **Usage**::

        daemon = Daemon(settings)
        daemon.run()            # blocks until Ctrl-C / SIGTERM (main thread) or stop()

        threading.Thread(target=daemon.run).start()   # tests: no signal handling off-main
        host, port = daemon.wait_listening()
        daemon.stop()
    """

    def __init__(
        self,
        settings: DaemonSettings,
        *,
        announce: Announce | None = None,
        configure_logging: bool = True,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.configure_logging = configure_logging
        self.address: tuple[str, int] | None = None
        self.error: BaseException | None = None
        self._listening = threading.Event()
        self._finished = threading.Event()
        self._server: DaemonServer | None = None
        self._ingestor: Ingestor | None = None
        self._stop_requested = False

    def run(self) -> str | None:
        """Serve until stopped; returns the name of the signal that stopped it (None when
        :meth:`stop` did). Raises BridgeError when it cannot start."""
        try:
            return self._run()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._finished.set()
            self._listening.set()

    def _run(self) -> str | None:
        # `serve` catches the stop signals as its very first step; a daemon run by a program
        # (a test, a service wrapper) catches them here and gives them back when it ends.
        ours = not stop_signals_caught()
        stop = catch_stop_signals()
        try:
            settings = self.settings
            private_dir(settings.home)
            with HomeLock(settings.home):
                if self.configure_logging:
                    setup_logging(settings.home, mask_numbers=settings.mask_numbers)
                if stop is not None:
                    stop.on_stop(self._on_signal)
                return self._start_and_serve(stop)
        finally:
            if ours:
                release_stop_signals()

    def _start_and_serve(self, stop: StopSignals | None) -> str | None:
        from microsip_bridge.server.app import create_app
        from microsip_bridge.store.engine import make_engine

        settings = self.settings
        other = running_daemon(settings.home)
        if other is not None:  # a daemon of an older version, which took no lock
            raise BridgeError(
                f"a daemon already runs for this home: pid {other.get('pid')} at "
                f"{other.get('url')}",
                path=settings.home,
            )
        if self._stopping():
            return self._stopped_by(stop)
        engine = make_engine(settings.database_url, settings.home)
        _make_private(settings)
        sock = None
        ingestor = None
        try:
            if self._stopping():
                return self._stopped_by(stop)
            sock = bind_socket(settings.host, settings.port)
            raise_fd_limit()
            # The port served (port 0 picks one): the daemon's origins and cookie name it.
            settings = settings.with_(port=int(sock.getsockname()[1]))
            app = create_app(settings, engine)
            codes = app.state.login_codes
            ingestor = app.state.ingestor
            ingestor.start()
            self._ingestor = ingestor
            config = uvicorn.Config(
                app,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="on",
                server_header=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
                http=GuardedH11Protocol,
                ws=GuardedWebSocketProtocol,
                ws_ping_interval=WS_PING_INTERVAL,
                ws_ping_timeout=WS_PING_TIMEOUT,
                ws_max_size=WS_MAX_MESSAGE,
                ws_per_message_deflate=False,
            )
            server = DaemonServer(
                config,
                settings,
                announce=self.announce,
                on_listening=self._on_listening,
                feed=app.state.feed,
                login_link=lambda base: login_url(base, codes.issue()),
            )
            self._server = server
            if self._stopping():
                return self._stopped_by(stop)
            server.run(sockets=[sock])
            return self._stopped_by(stop)
        finally:
            if ingestor is not None:
                ingestor.stop()
            if sock is not None:
                sock.close()
            remove_daemon_file(settings.home, os.getpid())
            engine.dispose()

    def _stopping(self) -> bool:
        """A stop was asked for (a signal, or :meth:`stop` from another thread)."""
        return self._stop_requested

    def _on_signal(self, count: int) -> None:
        self._stop_requested = True
        if self._server is not None:
            self._server.request_stop(count)

    @staticmethod
    def _stopped_by(stop: StopSignals | None) -> str | None:
        return stop.signal_name if stop is not None else None

    def _on_listening(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._listening.set()
        # Ingest what hooks spooled while the daemon was starting.
        if self._ingestor is not None:
            self._ingestor.schedule_spool()

    def wait_listening(self, timeout: float = 60.0) -> tuple[str, int]:
        """Wait until the daemon listens; its ``(host, port)``. BridgeError if it failed."""
        if not self._listening.wait(timeout):
            raise BridgeError(f"the daemon did not start within {timeout:g} s")
        if self.address is None:
            raise BridgeError(f"the daemon did not start: {self.error!r}")
        return self.address

    def stop(self, timeout: float | None = 60.0) -> None:
        """Ask the daemon to stop as on SIGTERM, and wait for it to finish (from any thread)."""
        self._stop_requested = True
        if self._server is not None:
            self._server.should_exit = True
        self._finished.wait(timeout)


def _make_private(settings: DaemonSettings) -> None:
    """bridge.db and its journal files, readable by the user alone (SQLite creates them with
    the umask's permissions)."""
    if os.name != "posix" or settings.database_url:
        return
    from microsip_bridge.store.engine import DB_NAME

    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            (settings.home / f"{DB_NAME}{suffix}").chmod(0o600)


def serve(
    settings: DaemonSettings,
    *,
    announce: Announce | None = None,
    configure_logging: bool = True,
) -> str | None:
    """Run the daemon until Ctrl-C or SIGTERM; returns the name of the signal that stopped it.
    Raises BridgeError when it cannot start."""
    return Daemon(settings, announce=announce, configure_logging=configure_logging).run()
