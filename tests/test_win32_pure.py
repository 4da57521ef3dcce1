"""The platform-free parts of the Win32 layer: COPYDATASTRUCT and the WM_COPYDATA payload."""

from __future__ import annotations

import ctypes
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import CommandError
from microsip_bridge.microsip import _win32
from microsip_bridge.microsip._win32 import (
    COPYDATASTRUCT,
    DWDATA_COMMAND_LINE,
    DWDATA_POSTED_COMMAND_LINE,
    WM_COPYDATA,
    MicroSIPWindow,
    pack_copydata,
)

POINTER = ctypes.sizeof(ctypes.c_void_p)

# Text MicroSIP could receive: anything but NUL and lone surrogates (which are not UTF-16).
command_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
)


def test_message_and_dwdata_values() -> None:
    # facts §1.3/§1.4: WM_COPYDATA, dwData 1 (synchronous) and 2 (posted, 3.20+).
    assert WM_COPYDATA == 0x004A
    assert (DWDATA_COMMAND_LINE, DWDATA_POSTED_COMMAND_LINE) == (1, 2)


def test_copydatastruct_layout_matches_win32() -> None:
    # dwData is ULONG_PTR (pointer-sized), cbData a 32-bit DWORD, lpData a pointer; the same
    # layout on every OS, so this test means something on Linux too.
    assert COPYDATASTRUCT.dwData.offset == 0
    assert COPYDATASTRUCT.dwData.size == POINTER
    assert COPYDATASTRUCT.cbData.offset == POINTER
    assert COPYDATASTRUCT.cbData.size == 4
    assert COPYDATASTRUCT.lpData.offset == 2 * POINTER  # padded after cbData on 64-bit
    assert ctypes.sizeof(COPYDATASTRUCT) == 3 * POINTER


def test_pack_ascii_number() -> None:
    # facts §1.3: UTF-16LE, terminating NUL included, cbData = 2*len + 2.
    assert pack_copydata("123", 1) == (1, 8, b"1\x002\x003\x00\x00\x00")


def test_pack_keeps_dwdata_apart() -> None:
    sync = pack_copydata("/answer", DWDATA_COMMAND_LINE)
    posted = pack_copydata("/answer", DWDATA_POSTED_COMMAND_LINE)
    assert sync[0] == 1
    assert posted[0] == 2
    assert sync[1:] == posted[1:]


def test_pack_empty_string_is_just_the_terminator() -> None:
    assert pack_copydata("", 2) == (2, 2, b"\x00\x00")


def test_pack_counts_utf16_code_units_not_characters() -> None:
    # U+1F600 is one Python character but a surrogate pair (2 units) in UTF-16.
    text = "a\U0001f600"
    assert len(text) == 2
    _, cb, payload = pack_copydata(text, 1)
    assert cb == 2 * 3 + 2
    assert payload == b"a\x00" + b"\x3d\xd8\x00\xde" + b"\x00\x00"


def test_pack_non_ascii_bmp_text() -> None:
    # A Greek name as in the corpus' obsidian-logger contact, sent as an instant message.
    _, cb, payload = pack_copydata("200 Γιώργος", 1)
    assert cb == 2 * 11 + 2
    assert payload[:-2].decode("utf-16-le") == "200 Γιώργος"


def test_pack_refuses_embedded_nul() -> None:
    # MicroSIP reads up to the first NUL and ignores cbData: "12\x0034" would dial 12.
    with pytest.raises(CommandError, match="NUL"):
        pack_copydata("12\x0034", 1)


def test_pack_refuses_lone_surrogates() -> None:
    with pytest.raises(CommandError, match="U\\+D800"):
        pack_copydata("1\ud8002", 1)


@pytest.mark.parametrize("dw_data", [-1, 2 ** (8 * POINTER)])
def test_pack_refuses_dwdata_outside_ulong_ptr(dw_data: int) -> None:
    with pytest.raises(CommandError, match="ULONG_PTR"):
        pack_copydata("1", dw_data)


@given(command_text, st.sampled_from([DWDATA_COMMAND_LINE, DWDATA_POSTED_COMMAND_LINE]))
def test_pack_property(text: str, dw_data: int) -> None:
    dw, cb, payload = pack_copydata(text, dw_data)
    units = len(text.encode("utf-16-le")) // 2
    assert dw == dw_data
    assert cb == len(payload) == 2 * units + 2
    assert payload.endswith(b"\x00\x00")
    # What MicroSIP reads (up to the first NUL code unit) is exactly the text.
    code_units = [payload[i : i + 2] for i in range(0, len(payload), 2)]
    assert code_units.index(b"\x00\x00") == units
    assert payload[:-2].decode("utf-16-le") == text


@given(command_text)
def test_struct_carries_the_payload(text: str) -> None:
    dw, cb, payload = pack_copydata(text, 2)
    buf = ctypes.create_string_buffer(payload, len(payload))
    cds = COPYDATASTRUCT(dw, cb, ctypes.cast(buf, ctypes.c_void_p))
    assert cds.dwData == 2
    assert cds.cbData == cb
    assert cds.lpData is not None
    assert ctypes.string_at(cds.lpData, cds.cbData) == payload


def test_window_record_is_immutable() -> None:
    window = MicroSIPWindow(hwnd=0x1234, pid=42, exe=None)
    with pytest.raises(AttributeError):
        window.pid = 1  # type: ignore[misc]


def test_wintypes_imports_on_every_os() -> None:
    # stack.md §3.10: ctypes.wintypes imports on Linux, so the struct can be tested here.
    from ctypes import wintypes

    assert ctypes.sizeof(wintypes.HWND) == POINTER
    assert ctypes.sizeof(wintypes.WPARAM) == POINTER


@pytest.mark.skipif(sys.platform == "win32", reason="checks the guard off Windows")
def test_windows_only_parts_are_absent_elsewhere() -> None:
    # The module imports everywhere; the ctypes.WinDLL/winreg parts exist only on Windows.
    for name in ("find_microsip_windows", "send_copydata", "process_alive", "WinRegistryReader"):
        assert not hasattr(_win32, name), name
