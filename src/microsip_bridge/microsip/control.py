"""The controller transports of the library: a built command to a running MicroSIP, by
WM_COPYDATA to its window or by running ``microsip.exe COMMAND`` (facts §1.2-§1.4)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from microsip_bridge.errors import BridgeError, MicroSIPNotRunningError, RefusedCommandError
from microsip_bridge.microsip._win32 import (
    COPYDATA_ACCEPTED,
    COPYDATA_DROPPED,
    DEFAULT_TIMEOUT_MS,
    DWDATA_COMMAND_LINE,
    DWDATA_POSTED_COMMAND_LINE,
    MicroSIPWindow,
    pack_copydata,
)
from microsip_bridge.microsip.commands import S20, Channel, Command, Version, validate

TAKEN = COPYDATA_ACCEPTED  # what MicroSIP answers for a command it took (not: that it worked)
DROPPED = COPYDATA_DROPPED  # SIP stack down, or a dwData it does not know
EXE_TIMEOUT = 5.0


class ControlTransport(Protocol):
    """One way to hand MicroSIP a command. ``send`` returns :data:`TAKEN` or :data:`DROPPED`,
    raises MicroSIPNotRunningError when nothing is there to take it, BridgeError otherwise."""

    name: str
    version: Version | None  # MicroSIP's, when known: which commands mean what (facts §1.5)

    def send(self, command: Command) -> int: ...


def dw_data_for(version: Version | None) -> int:
    """dwData 2 (queued, never blocks on a modal box) on 3.20+, 1 on older or unknown versions,
    which ignore 2 (facts §1.4)."""
    return (
        DWDATA_POSTED_COMMAND_LINE
        if version is not None and version >= S20
        else (DWDATA_COMMAND_LINE)
    )


def _copydata_text(command: Command, version: Version | None) -> str:
    if command.command_line_only:
        raise RefusedCommandError(
            f"{command.text!r} works only as microsip.exe {command.text}; over WM_COPYDATA "
            "MicroSIP would dial it"
        )
    return validate(command.text, version).text


@dataclass(slots=True)
class CopyDataTransport:
    """WM_COPYDATA to a MicroSIP window (Windows). ``version``: MicroSIP's, for dwData."""

    window: MicroSIPWindow
    version: Version | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    name: str = "WM_COPYDATA"

    def payload(self, command: Command) -> tuple[int, int, bytes]:
        """``(dwData, cbData, bytes)`` this transport sends for ``command`` (pure)."""
        return pack_copydata(_copydata_text(command, self.version), dw_data_for(self.version))

    def send(self, command: Command) -> int:
        dw_data, _, _ = self.payload(command)
        if sys.platform == "win32":
            from microsip_bridge.microsip._win32 import send_copydata

            # send_copydata reports UIPI (MicroSIP elevated, we are not) in its error.
            return send_copydata(
                self.window.hwnd,
                command.text,
                dw_data == DWDATA_POSTED_COMMAND_LINE,
                timeout_ms=self.timeout_ms,
            )
        raise BridgeError("WM_COPYDATA exists on Windows only")


Launcher = Callable[..., Any]


@dataclass(slots=True)
class ExeTransport:
    """``microsip.exe COMMAND`` (facts §1.2): a running MicroSIP gets it forwarded by the new
    process, which then exits; with none running, that process *is* MicroSIP starting, and it
    runs the command once its SIP stack is up. So the wait is bounded by ``timeout``: a process
    still running then is the new MicroSIP, and is left running. The argument goes as an argv
    item, never through a shell; MicroSIP reads its raw command line and strips one pair of
    quotes, which is all Windows adds around an argument with a space."""

    exe: Path
    version: Version | None = None
    timeout: float = EXE_TIMEOUT
    launch: Launcher = field(default=subprocess.Popen)
    name: str = "microsip.exe"

    def argv(self, command: Command) -> Sequence[str]:
        """The argument vector that carries ``command`` (pure)."""
        text = validate(command.text, channel=Channel.COMMAND_LINE).text
        if '"' in text or "\\" in text:
            # Windows would escape them (\" and \\ before a quote), and MicroSIP does not
            # unescape: the command would arrive changed.
            raise RefusedCommandError(
                "a command with a double quote or a backslash cannot pass through microsip.exe's "
                "command line unchanged"
            )
        return [str(self.exe), text]

    def send(self, command: Command) -> int:
        argv = self.argv(command)
        options: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "close_fds": True,
        }
        if sys.platform != "win32":
            options["start_new_session"] = True  # a MicroSIP it starts outlives us
        try:
            proc = self.launch(argv, **options)
        except FileNotFoundError:
            raise MicroSIPNotRunningError("MicroSIP's exe is not there", path=self.exe) from None
        except OSError as exc:
            raise BridgeError(
                f"cannot run MicroSIP: {exc.strerror or exc}", path=self.exe
            ) from None
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            # Still running: the new MicroSIP itself, which runs the command once its SIP stack
            # is up. A thread waits for its end, so that it is reaped, never left a zombie.
            threading.Thread(target=proc.wait, name="microsip-exe", daemon=True).start()
        return TAKEN
