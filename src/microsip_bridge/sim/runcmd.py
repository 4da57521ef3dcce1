"""MicroSIP's RunCmd for the simulator: start a cmd* hook exactly as MicroSIP would, and time it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass

from microsip_bridge.microsip.cmdline import (
    command_line_to_argv,
    microsip_shell_execute,
)
from microsip_bridge.model import Event

# MSIP::RunCmd waits WaitForSingleObject(hProcess, 10000) and then carries on (facts §2.3 4).
MICROSIP_HOOK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HookRun:
    """One hook MicroSIP ran, and how long it held MicroSIP up.

    ``value`` is the cmd* value as MicroSIP holds it (GetPrivateProfileString's result, facts
    §2.6); ``command_line`` what ShellExecuteEx hands the program (``"<file>" <parameters>``);
    ``argv`` what the program gets from it (CommandLineToArgvW). ``blocked_seconds`` is how long
    the calling thread waited: up to the timeout (the measure of how much a hook would freeze a
    real MicroSIP). ``returncode`` is None when the wait gave up (``timed_out``; the hook is left
    running, as MicroSIP leaves it) or when the program could not be started (``error``; MicroSIP
    shows nothing, SEE_MASK_FLAG_NO_UI). MicroSIP ignores the exit code; we keep it for tests.
    """

    event: Event
    number: str
    value: str
    command_line: str
    argv: tuple[str, ...]
    blocked_seconds: float
    returncode: int | None
    timed_out: bool = False
    error: str | None = None


class HookRunner:
    """Starts hooks the way MSIP::RunCmd does (facts §2.3) and keeps the ones it stopped
    waiting for, so that they can be reaped when the simulator stops.

    * The value is trimmed and split by CommandLineToArgvW; argv[0] is the program, the other
      arguments are re-joined with single spaces and no quotes, and the number is appended
      unquoted (cmdline.microsip_shell_execute, the library's model of RunCmd).
    * No shell, ever, and nothing is expanded: ``%PATH%`` and ``$HOME`` reach the program as
      text. On Windows the program gets exactly MicroSIP's command line (CreateProcess with the
      string); elsewhere it gets the argv list that CommandLineToArgvW would make of that line.
    * No working directory is given (the child inherits ours) and no window (SW_HIDE): the
      child's standard streams go nowhere unless ``show_output``.
    * The wait ends when the hook exits or after ``timeout`` seconds; a hook still running then
      is left alone (MicroSIP does not kill it).
    """

    def __init__(self, timeout: float = MICROSIP_HOOK_TIMEOUT, *, show_output: bool = False):
        self.timeout = timeout
        self.show_output = show_output
        self.abandoned: list[subprocess.Popen[bytes]] = []

    def run(self, event: Event, value: str, number: str) -> HookRun | None:
        """Run ``value`` for ``event`` with ``number``; None when MicroSIP would start nothing
        (an empty value, or a value whose program part is empty)."""
        call = microsip_shell_execute(value, number)
        if call is None:
            return None
        line = call.child_command_line
        argv = tuple(command_line_to_argv(line))
        output = None if self.show_output else subprocess.DEVNULL
        started = time.perf_counter()
        try:
            if sys.platform == "win32":
                proc = subprocess.Popen(
                    line,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    creationflags=subprocess.CREATE_NO_WINDOW,
                )
            else:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    close_fds=True,
                )
        except OSError as exc:
            return HookRun(
                event,
                number,
                value,
                line,
                argv,
                time.perf_counter() - started,
                None,
                error=f"cannot start {call.file!r}: {exc.strerror or exc}",
            )
        try:
            code: int | None = proc.wait(timeout=self.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            code, timed_out = None, True
            self.abandoned.append(proc)
        blocked = time.perf_counter() - started
        return HookRun(event, number, value, line, argv, blocked, code, timed_out)

    def reap(self, grace: float = 0.0) -> int:
        """Stop the hooks abandoned after a timeout that still run; returns how many were killed.

        Real MicroSIP leaves them running; the simulator cleans up after itself when it stops, so
        that a test never leaks a process. Only the processes it started are touched, by pid.
        """
        killed = 0
        for proc in self.abandoned:
            if proc.poll() is None and grace > 0:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
            if proc.poll() is None:
                proc.kill()
                killed += 1
            proc.wait()
        self.abandoned.clear()
        return killed
