"""The small Win32 layer (ctypes, winreg) behind the bridge's interfaces; imports fine anywhere."""

from __future__ import annotations

import ctypes
import sys
from ctypes import wintypes
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.errors import BridgeError, CommandError
from microsip_bridge.microsip.locate import Hive

WM_COPYDATA = 0x004A
# COPYDATASTRUCT.dwData values MicroSIP understands (facts §1.4): 1 runs the command inside the
# SendMessage call (all versions); 2 queues it and returns at once (3.20+; 3.19 ignores it).
DWDATA_COMMAND_LINE = 1
DWDATA_POSTED_COMMAND_LINE = 2
# What onCopyData returns: 0 accepted; 1 dropped (SIP stack not running) or dwData unknown.
COPYDATA_ACCEPTED = 0
COPYDATA_DROPPED = 1

MICROSIP_WINDOW_CLASS = "MicroSIP"  # _GLOBAL_NAME of the official build (facts §1.2)
DEFAULT_TIMEOUT_MS = 5000

SMTO_NORMAL = 0x0000
SMTO_ABORTIFHUNG = 0x0002
GW_OWNER = 4
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
SYNCHRONIZE = 0x00100000
WAIT_TIMEOUT = 0x102
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_WINDOW_HANDLE = 1400
ERROR_TIMEOUT = 1460

_SIZE_T_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1
_DWORD_MAX = 0xFFFFFFFF


class COPYDATASTRUCT(ctypes.Structure):
    """Win32's COPYDATASTRUCT; dwData is a ULONG_PTR, so pointer-sized on 64-bit Windows."""

    # cbData is a DWORD, but wintypes.DWORD is c_ulong, 8 bytes on 64-bit Linux: c_uint32 is the
    # same type on Windows and keeps the layout right where the packing is tested.
    _fields_ = (
        ("dwData", ctypes.c_size_t),
        ("cbData", ctypes.c_uint32),
        ("lpData", ctypes.c_void_p),
    )


def pack_copydata(text: str, dw_data: int) -> tuple[int, int, bytes]:
    """``(dwData, cbData, payload)`` for a WM_COPYDATA carrying a command line to MicroSIP.

    The payload is UTF-16LE with a 2-byte NUL terminator and ``cbData = 2 * len + 2`` where len
    counts UTF-16 code units (a character outside the BMP is a surrogate pair: two units) — facts
    §1.3. MicroSIP ignores cbData and reads up to the NUL, so an embedded NUL would silently cut
    the command: it is refused, as are lone surrogates, which cannot be UTF-16.
    """
    if not 0 <= dw_data <= _SIZE_T_MAX:
        raise CommandError(f"dwData {dw_data} does not fit a ULONG_PTR")
    if "\x00" in text:
        raise CommandError(
            "the command contains a NUL character, where MicroSIP would cut it off",
            where=repr(text[:60]),
        )
    try:
        payload = text.encode("utf-16-le") + b"\x00\x00"
    except UnicodeEncodeError as exc:
        raise CommandError(
            f"the command holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}) at "
            f"position {exc.start}, which UTF-16 cannot carry",
        ) from None
    if len(payload) > _DWORD_MAX:
        raise CommandError(f"the command is too long for WM_COPYDATA ({len(payload)} bytes)")
    return dw_data, len(payload), payload


@dataclass(frozen=True, slots=True)
class MicroSIPWindow:
    """A running MicroSIP's main window: its handle, process id and exe (None if unreadable)."""

    hwnd: int
    pid: int
    exe: Path | None


if sys.platform == "win32":
    import winreg

    _user32 = ctypes.WinDLL("user32", use_last_error=True)
    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)

    _WNDENUMPROC = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)

    # Every prototype is declared: by default ctypes passes Python ints and returns results as
    # 32-bit C ints, which truncates handles and the LPARAM pointer on 64-bit Python (facts §1.4).
    _user32.EnumWindows.argtypes = (_WNDENUMPROC, wintypes.LPARAM)
    _user32.EnumWindows.restype = wintypes.BOOL
    _user32.GetClassNameW.argtypes = (wintypes.HWND, wintypes.LPWSTR, ctypes.c_int)
    _user32.GetClassNameW.restype = ctypes.c_int
    _user32.GetWindow.argtypes = (wintypes.HWND, wintypes.UINT)
    _user32.GetWindow.restype = wintypes.HWND
    _user32.GetWindowThreadProcessId.argtypes = (wintypes.HWND, ctypes.POINTER(wintypes.DWORD))
    _user32.GetWindowThreadProcessId.restype = wintypes.DWORD
    _user32.SendMessageTimeoutW.argtypes = (
        wintypes.HWND,
        wintypes.UINT,
        wintypes.WPARAM,
        wintypes.LPARAM,
        wintypes.UINT,
        wintypes.UINT,
        ctypes.POINTER(ctypes.c_size_t),  # PDWORD_PTR
    )
    _user32.SendMessageTimeoutW.restype = wintypes.LPARAM  # LRESULT
    _kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    _kernel32.OpenProcess.restype = wintypes.HANDLE
    _kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    _kernel32.CloseHandle.restype = wintypes.BOOL
    _kernel32.QueryFullProcessImageNameW.argtypes = (
        wintypes.HANDLE,
        wintypes.DWORD,
        wintypes.LPWSTR,
        ctypes.POINTER(wintypes.DWORD),
    )
    _kernel32.QueryFullProcessImageNameW.restype = wintypes.BOOL
    _kernel32.WaitForSingleObject.argtypes = (wintypes.HANDLE, wintypes.DWORD)
    _kernel32.WaitForSingleObject.restype = wintypes.DWORD

    def _process_exe(pid: int) -> Path | None:
        """The full exe path of a process; None when Windows will not say."""
        handle = _kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return None
        try:
            size = wintypes.DWORD(32768)  # long paths (\\?\...) can exceed MAX_PATH
            buf = ctypes.create_unicode_buffer(size.value)
            if not _kernel32.QueryFullProcessImageNameW(handle, 0, buf, ctypes.byref(size)):
                return None
            return Path(buf.value)
        finally:
            _kernel32.CloseHandle(handle)

    def find_microsip_windows(class_name: str = MICROSIP_WINDOW_CLASS) -> list[MicroSIPWindow]:
        """Every running MicroSIP's main window, found as MicroSIP finds itself (facts §1.2).

        A top-level, unowned window of class ``MicroSIP``. Several can run (a portable copy does
        not forward to an installed one), hence a list; the exe tells them apart. A rebranded
        build registers another class name: pass it.
        """
        found: list[MicroSIPWindow] = []
        name_buf = ctypes.create_unicode_buffer(257)

        def visit(hwnd: int | None, _lparam: int) -> bool:
            if not hwnd:
                return True
            length = _user32.GetClassNameW(hwnd, name_buf, len(name_buf))
            if length <= 0 or name_buf.value != class_name:
                return True
            if _user32.GetWindow(hwnd, GW_OWNER):
                return True  # an owned window (a dialog), not the main one
            pid = wintypes.DWORD(0)
            _user32.GetWindowThreadProcessId(hwnd, ctypes.byref(pid))
            found.append(MicroSIPWindow(int(hwnd), int(pid.value), _process_exe(pid.value)))
            return True

        # The callback object must outlive the EnumWindows call; the local name keeps it alive.
        callback = _WNDENUMPROC(visit)
        _user32.EnumWindows(callback, 0)
        return found

    def send_copydata(
        hwnd: int,
        text: str,
        asynchronous: bool = True,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
    ) -> int:
        """Send a command line to MicroSIP's window; returns onCopyData's result (facts §1.4).

        0 means accepted, 1 means dropped (the SIP stack is not running) or not understood (dwData
        2 on MicroSIP 3.19). ``asynchronous`` sends dwData=2, which MicroSIP 3.20+ queues and
        answers at once; otherwise dwData=1, which runs the command inside the call.

        SendMessageTimeoutW rather than SendMessageW: with dwData=1 the call lasts until the
        command has run, including any modal error box MicroSIP opens ("invalid number"), and a
        hung MicroSIP would hang us forever. SMTO_ABORTIFHUNG gives up at once on a window that
        has stopped pumping messages, and the timeout bounds the rest. The data is safe either
        way: Windows copies a WM_COPYDATA payload into MicroSIP's process before delivering it.
        A timeout raises BridgeError (the command may still run later); so does a refusal by
        Windows, e.g. when MicroSIP runs as administrator and we do not (UIPI, facts §1.4).
        """
        dw_data, cb_data, payload = pack_copydata(
            text, DWDATA_POSTED_COMMAND_LINE if asynchronous else DWDATA_COMMAND_LINE
        )
        buf = ctypes.create_string_buffer(payload, len(payload))
        cds = COPYDATASTRUCT(dw_data, cb_data, ctypes.cast(buf, ctypes.c_void_p))
        result = ctypes.c_size_t(0)
        ctypes.set_last_error(0)
        ok = _user32.SendMessageTimeoutW(
            hwnd,
            WM_COPYDATA,
            0,  # MicroSIP's own second instance sends no sender window either (facts §1.3)
            ctypes.addressof(cds),
            SMTO_NORMAL | SMTO_ABORTIFHUNG,
            timeout_ms,
            ctypes.byref(result),
        )
        if not ok:
            error = ctypes.get_last_error()
            where = f"window {hwnd:#x}"
            if error in (ERROR_TIMEOUT, 0):
                raise BridgeError(
                    f"MicroSIP did not answer within {timeout_ms / 1000:g} s (hung, or a dialog "
                    "box is open in it); the command may still run",
                    where=where,
                )
            if error == ERROR_ACCESS_DENIED:
                raise BridgeError(
                    "Windows blocked the message: MicroSIP runs with higher rights (as "
                    "administrator) than this program",
                    where=where,
                )
            if error == ERROR_INVALID_WINDOW_HANDLE:
                raise BridgeError("MicroSIP's window is gone (MicroSIP just exited?)", where=where)
            raise BridgeError(
                f"sending to MicroSIP failed: {ctypes.FormatError(error)}", where=where
            )
        return int(result.value)

    def process_alive(pid: int) -> bool:
        """Whether a process with this id is running (os.kill(pid, 0) would kill it on Windows)."""
        if not 0 < pid <= _DWORD_MAX:
            return False  # not a Windows process id (ctypes would refuse it as a DWORD)
        handle = _kernel32.OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            # Access denied means it exists but belongs to someone we may not look at.
            return ctypes.get_last_error() == ERROR_ACCESS_DENIED
        try:
            # An exited process whose handles are still held elsewhere is signalled.
            return int(_kernel32.WaitForSingleObject(handle, 0)) == WAIT_TIMEOUT
        finally:
            _kernel32.CloseHandle(handle)

    class WinRegistryReader:
        """Reads the real registry with winreg, as MicroSIP's ``CRegKey::QueryStringValue`` does.

        HKCU\\Software is shared by 32- and 64-bit programs, but HKLM\\Software is not: the
        official installer is 32-bit, so its HKLM value lands in the 32-bit view (WOW6432Node),
        which a 32-bit MicroSIP reads. We try that view first, then the 64-bit one. [inferred]
        """

        def default_value(self, hive: Hive, key: str) -> str | None:
            root = winreg.HKEY_CURRENT_USER if hive == "HKCU" else winreg.HKEY_LOCAL_MACHINE
            views = (0,) if hive == "HKCU" else (winreg.KEY_WOW64_32KEY, winreg.KEY_WOW64_64KEY)
            for view in views:
                try:
                    with winreg.OpenKey(root, key, 0, winreg.KEY_READ | view) as handle:
                        value, kind = winreg.QueryValueEx(handle, "")
                except OSError:
                    continue
                # QueryStringValue takes REG_SZ and REG_EXPAND_SZ, and expands nothing.
                string = kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) and isinstance(value, str)
                if string and value:
                    return str(value)
            return None
