"""Whether the MicroSIP owning an ini or a Contacts.xml runs, so writes can refuse (facts §3.2)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip._win32 import MicroSIPWindow
from microsip_bridge.microsip.locate import (
    RegistryReader,
    env_value,
    locate_from_exe,
    read_install_path,
    same_path,
)

# The marker of our MicroSIP simulator (a test double that plays MicroSIP on any OS): while it
# runs it keeps its process id, as decimal text, in this file beside the ini it owns, and removes
# the file when it stops. A file whose process is gone is stale and ignored.
SIM_PID_FILE = "microsip-sim.pid"
_MAX_PID_FILE_BYTES = 64


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and negatives address process groups in os.kill, never one process
    if sys.platform == "win32":
        from microsip_bridge.microsip._win32 import process_alive

        alive = process_alive(pid)
    else:
        alive = _posix_pid_alive(pid)
    return alive


def _posix_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only (on Windows it would kill: not used)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but belongs to another user
    except (OverflowError, OSError):
        return False
    return True


def simulator_pid(folder: Path) -> int | None:
    """The pid in ``folder``'s simulator marker if that process is alive, else None.

    An unreadable, oversized or non-numeric file counts as stale, like a dead pid: the marker only
    ever adds a refusal, so a damaged one must not break commands.
    """
    marker = folder / SIM_PID_FILE
    try:
        with marker.open("rb") as fh:
            raw = fh.read(_MAX_PID_FILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _MAX_PID_FILE_BYTES:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if _pid_alive(pid) else None


def window_uses_ini(
    window: MicroSIPWindow,
    ini: Path,
    *,
    install_path: str | None,
    appdata: str | None,
    localappdata: str | None = None,
) -> bool:
    """Whether this running MicroSIP reads ``ini``, by MicroSIP's own location rule (facts §3.1).

    A window whose exe cannot be read, or whose location cannot be worked out, counts as using
    it: a false "running" costs the user a retry with MicroSIP closed, a false "not running" costs
    their edit, which MicroSIP overwrites when it exits.
    """
    return _window_uses(window, Path(ini), "ini", install_path, appdata, localappdata)


def _window_uses(
    window: MicroSIPWindow,
    path: Path,
    which: Literal["ini", "contacts"],
    install_path: str | None,
    appdata: str | None,
    localappdata: str | None,
) -> bool:
    if window.exe is None:
        return True
    try:
        location = locate_from_exe(
            window.exe, install_path=install_path, appdata=appdata, localappdata=localappdata
        )
    except BridgeError:
        return True
    return same_path(location.ini if which == "ini" else location.contacts, path)


def microsip_running(
    ini: Path,
    *,
    windows: Iterable[MicroSIPWindow] | None = None,
    env: Mapping[str, str] = os.environ,
    registry: RegistryReader | None = None,
) -> bool | None:
    """Whether a MicroSIP that uses ``ini`` is running: True, False, or None for "cannot tell".

    True when the simulator's marker (:data:`SIM_PID_FILE`) beside the ini names a live process,
    or when a MicroSIP window's exe maps to this ini (installed or portable, with the registry's
    install path). On Windows the windows are enumerated and the real registry read; elsewhere
    the answer is None unless ``windows`` is given (tests, or a caller that knows). Write commands
    refuse on True, since MicroSIP rewrites its ini when it exits (facts §3.2).
    """
    return _running(Path(ini), "ini", windows, env, registry)


def contacts_in_use(
    contacts: Path,
    *,
    windows: Iterable[MicroSIPWindow] | None = None,
    env: Mapping[str, str] = os.environ,
    registry: RegistryReader | None = None,
) -> bool | None:
    """Whether a running MicroSIP keeps its contacts in ``contacts``: True, False, or None for
    "cannot tell", as :func:`microsip_running` answers for an ini (the simulator's marker in
    that folder, or a MicroSIP window whose Contacts.xml it is). For a Contacts.xml named
    without its ini: MicroSIP rewrites the file from memory after any change (facts §4.1)."""
    return _running(Path(contacts), "contacts", windows, env, registry)


def _running(
    path: Path,
    which: Literal["ini", "contacts"],
    windows: Iterable[MicroSIPWindow] | None,
    env: Mapping[str, str],
    registry: RegistryReader | None,
) -> bool | None:
    if simulator_pid(path.parent) is not None:
        return True
    if windows is None:
        if sys.platform == "win32":
            from microsip_bridge.microsip._win32 import WinRegistryReader, find_microsip_windows

            windows = find_microsip_windows()
            if registry is None:
                registry = WinRegistryReader()
        else:
            return None
    install = read_install_path(registry)
    return any(
        _window_uses(
            window,
            path,
            which,
            install.path if install else None,
            env_value(env, "APPDATA"),
            env_value(env, "LOCALAPPDATA"),
        )
        for window in windows
    )
