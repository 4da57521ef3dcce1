"""Which controller transport reaches the MicroSIP of an ini: the simulator, the window, the exe."""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path

from microsip_bridge.errors import BridgeError, MicroSIPNotRunningError
from microsip_bridge.microsip.commands import Version
from microsip_bridge.microsip.control import ControlTransport, ExeTransport
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.microsip.process import simulator_pid
from microsip_bridge.sim.channel import SimulatorTransport, served_version


class Via(enum.StrEnum):
    """How commands reach MicroSIP (the ``control_transport`` setting)."""

    AUTO = "auto"  # the simulator if it serves the folder, else the window, else microsip.exe
    WINDOW = "window"  # WM_COPYDATA to the running MicroSIP's window (Windows)
    EXE = "exe"  # always run microsip.exe COMMAND
    SIMULATOR = "simulator"  # the simulator's channel only


def ini_version(ini: Path | None) -> Version | None:
    """The ``version`` MicroSIP 3.22+ writes into [Settings] at each start; None when absent
    (an older MicroSIP) or unreadable."""
    if ini is None:
        return None
    try:
        text = IniDocument.load(ini).get("Settings", "version")
        return Version.parse(text) if text else None
    except (BridgeError, OSError):
        return None


def choose_transport(
    ini: Path | None, exe: Path | None = None, via: Via | str = Via.AUTO
) -> ControlTransport:
    """The transport to the MicroSIP that uses ``ini`` (or lives beside ``exe``).

    AUTO: the simulator when its marker in the ini's folder names a live process; on Windows
    the window of a MicroSIP that reads this ini; else, on Windows, ``microsip.exe COMMAND``
    (which forwards to a running instance or starts one). Raises MicroSIPNotRunningError when
    none applies.
    """
    via = Via(via)
    if ini is None and exe is None:
        raise MicroSIPNotRunningError(
            "MicroSIP's folder is not known: give --microsip or --ini, or set microsip"
        )
    folder = ini.parent if ini is not None else exe.parent  # type: ignore[union-attr]
    if via in (Via.AUTO, Via.SIMULATOR):
        if simulator_pid(folder) is not None:
            return SimulatorTransport(folder, version=served_version(folder))
        if via is Via.SIMULATOR:
            raise MicroSIPNotRunningError("no simulator is running here", path=folder)
    if via in (Via.AUTO, Via.WINDOW):
        window = _window_transport(ini)
        if window is not None:
            return window
        if via is Via.WINDOW:
            raise MicroSIPNotRunningError("no MicroSIP window is open for this ini", path=ini)
    if via is Via.EXE or (via is Via.AUTO and sys.platform == "win32"):
        if exe is None:
            raise MicroSIPNotRunningError(
                "MicroSIP is not running, and its exe is not known to start it: give --microsip"
            )
        return ExeTransport(exe, version=ini_version(ini))
    raise MicroSIPNotRunningError("MicroSIP is not running", path=ini)


def _window_transport(ini: Path | None) -> ControlTransport | None:
    if sys.platform == "win32":
        from microsip_bridge.microsip._win32 import WinRegistryReader, find_microsip_windows
        from microsip_bridge.microsip.control import CopyDataTransport
        from microsip_bridge.microsip.locate import env_value, read_install_path
        from microsip_bridge.microsip.process import window_uses_ini

        windows = find_microsip_windows()
        if ini is not None:
            install = read_install_path(WinRegistryReader())
            windows = [
                w
                for w in windows
                if window_uses_ini(
                    w,
                    ini,
                    install_path=install.path if install else None,
                    appdata=env_value(os.environ, "APPDATA"),
                    localappdata=env_value(os.environ, "LOCALAPPDATA"),
                )
            ]
        if windows:
            return CopyDataTransport(windows[0], version=ini_version(ini))
    return None
