"""The simulator's MicroSIP folder: a portable layout with microsip.ini and Contacts.xml."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.errors import BridgeError, NotFoundError
from microsip_bridge.fileio import atomic_write
from microsip_bridge.microsip.commands import S22, Version
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import serialize_contacts
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding
from microsip_bridge.microsip.process import SIM_PID_FILE, simulator_pid

INI_NAME = "microsip.ini"  # microsip.exe -> microsip.ini (facts §3.1)
CONTACTS_NAME = "Contacts.xml"  # fixed name, beside the ini (facts §4.1)
# Where the running simulator says how to reach its command channel (sim/channel.py).
STATE_FILE = "microsip-sim.json"
DEFAULT_DOMAIN = "sip.example.invalid"
DEFAULT_VERSION = "3.22.3"

# [Settings] as MicroSIP 3.2x writes it, in its order: the key list of the corpus file
# real-eltonwillian-no-calls.microsip.ini (written by MicroSIP with video support), with the
# defaults of facts §3.4 where the user had changed a value. ``accountId`` and ``version`` are
# filled in by write_settings; ``callsLastKey`` is absent until the first call, as in that file
# (absent means -1, facts §3.4 and §5). The eight cmd* keys are written empty, as MicroSIP does.
_SETTINGS: tuple[tuple[str, str], ...] = (
    ("accountId", "1"),
    ("singleMode", "1"),
    ("ringingSound", ""),
    ("volumeRing", "100"),
    ("audioRingDevice", '""'),
    ("audioOutputDevice", '""'),
    ("audioInputDevice", '""'),
    ("micAmplification", "0"),
    ("swLevelAdjustment", "0"),
    ("audioCodecs", "PCMA/8000/1 PCMU/8000/1"),
    ("VAD", "0"),
    ("EC", "1"),
    ("forceCodec", "0"),
    ("opusStereo", "0"),
    ("disableMessaging", "0"),
    ("disableVideo", "0"),
    ("videoCaptureDevice", '""'),
    ("videoCodec", ""),
    ("videoH264", "1"),
    ("videoH263", "1"),
    ("videoVP8", "1"),
    ("videoVP9", "1"),
    ("videoBitrate", "256"),
    ("rport", "1"),
    ("sourcePort", "0"),
    ("rtpPortMin", "0"),
    ("rtpPortMax", "0"),
    ("dnsSrvNs", ""),
    ("dnsSrv", "0"),
    ("STUN", ""),
    ("enableSTUN", "0"),
    ("recordingPath", "Recordings"),  # the portable default (facts §3.1)
    ("recordingFormat", ""),
    ("autoRecording", "0"),
    ("recordingButton", "1"),
    ("DTMFMethod", "0"),
    ("autoAnswer", "button"),
    ("autoAnswerDelay", "0"),
    ("autoAnswerNumber", ""),
    ("forwarding", ""),
    ("forwardingNumber", ""),
    ("forwardingDelay", "0"),
    ("denyIncoming", "button"),
    ("usersDirectory", ""),
    ("defaultAction", ""),
    ("enableMediaButtons", "0"),
    ("headsetSupport", "0"),
    ("localDTMF", "1"),
    ("enableLog", "0"),
    ("bringToFrontOnIncoming", "1"),
    ("enableLocalAccount", "0"),
    ("randomAnswerBox", "0"),
    ("crashReport", "1"),
    ("callWaiting", "1"),
    ("updatesInterval", ""),
    ("checkUpdatesTime", "0"),
    ("noResize", "0"),
    ("userAgent", ""),
    ("autoHangUpTime", "0"),
    ("maxConcurrentCalls", "0"),
    ("noIgnoreCall", "0"),
    # The file order of the cmd* keys (Busy before Start), not HOOK_KEYS' order.
    ("cmdOutgoingCall", ""),
    ("cmdIncomingCall", ""),
    ("cmdCallRing", ""),
    ("cmdCallAnswer", ""),
    ("cmdCallAnswerVideo", ""),
    ("cmdCallBusy", ""),
    ("cmdCallStart", ""),
    ("cmdCallEnd", ""),
    ("minimized", "0"),
    ("silent", "0"),
    ("portKnockerHost", ""),
    ("portKnockerPorts", ""),
    ("mainX", "100"),
    ("mainY", "100"),
    ("mainW", "259"),
    ("mainH", "500"),
    ("messagesX", "400"),
    ("messagesY", "100"),
    ("messagesW", "0"),
    ("messagesH", "0"),
    ("ringinX", "0"),
    ("ringinY", "0"),
    ("callsWidth0", "0"),
    ("callsWidth1", "0"),
    ("callsWidth2", "0"),
    ("callsWidth3", "0"),
    ("callsWidth4", "0"),
    ("callsWidth5", "0"),
    ("contactsWidth0", "0"),
    ("contactsWidth1", "0"),
    ("contactsWidth2", "0"),
    ("volumeOutput", "100"),
    ("volumeInput", "100"),
    ("activeTab", "0"),
    ("AA", "0"),
    ("AC", "0"),
    ("DND", "0"),
    ("alwaysOnTop", "0"),
    ("multiMonitor", "0"),
    ("enableShortcuts", "0"),
    ("shortcutsBottom", "0"),
    ("lastCallNumber", ""),
    ("lastCallHasVideo", "0"),
)
SETTINGS_KEYS: tuple[str, ...] = tuple(key for key, _ in _SETTINGS)

# [AccountN] keys in the order of the corpus file real-sasamosenko-3.2x.microsip.ini (facts §3.5).
# No username, so "remember password" is off and both username and password are empty, which is
# how MicroSIP saves such an account (facts §3.5); an empty server means no registration, and
# MicroSIP then dials at once (facts §1.6 5, §3.5).
ACCOUNT_KEYS: tuple[str, ...] = (
    "label",
    "server",
    "proxy",
    "domain",
    "username",
    "password",
    "authID",
    "displayName",
    "dialingPrefix",
    "dialPlan",
    "hideCID",
    "voicemailNumber",
    "transport",
    "publicAddr",
    "SRTP",
    "registerRefresh",
    "keepAlive",
    "publish",
    "ICE",
    "allowRewrite",
    "disableSessionTimer",
)
_ACCOUNT_DEFAULTS = {
    "label": "Simulator",
    "hideCID": "0",
    "transport": "udp",
    "registerRefresh": "300",
    "keepAlive": "15",
    "publish": "0",
    "ICE": "0",
    "allowRewrite": "0",
    "disableSessionTimer": "0",
}


@dataclass(frozen=True, slots=True)
class SimFolder:
    """Where a simulated MicroSIP keeps its files (the portable layout, facts §3.1)."""

    path: Path

    @property
    def ini(self) -> Path:
        return self.path / INI_NAME

    @property
    def contacts(self) -> Path:
        return self.path / CONTACTS_NAME

    @property
    def pid_file(self) -> Path:
        return self.path / SIM_PID_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def edit_ini(self, change: Callable[[IniDocument], object]) -> None:
        """Read, change, write: what each WritePrivateProfileString does to the file."""
        doc = IniDocument.load(self.ini)
        change(doc)
        if doc.modified:
            doc.save(backups=0)

    def running_pid(self) -> int | None:
        """The pid of a live simulator using this folder, if any (process.simulator_pid)."""
        return simulator_pid(self.path)

    def mark_running(self) -> None:
        """Write our pid, the marker by which process.microsip_running() sees "MicroSIP runs"."""
        other = self.running_pid()
        if other is not None and other != os.getpid():
            raise BridgeError(
                f"a simulator (pid {other}) is already running on this folder; one MicroSIP per "
                "ini, as with the real one",
                path=self.path,
            )
        atomic_write(self.pid_file, f"{os.getpid()}\n".encode("ascii"), backups=0)

    def clear_running(self) -> None:
        """Remove the marker, unless another process has written its own since."""
        try:
            text = self.pid_file.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return
        if text == str(os.getpid()):
            self.pid_file.unlink(missing_ok=True)


def settings_lines(*, account_id: int = 1, version: str | None = DEFAULT_VERSION) -> list[str]:
    """The ``key=value`` lines of a fresh [Settings] section, MicroSIP's order."""
    values = dict(_SETTINGS)
    values["accountId"] = str(account_id)
    values["checkUpdatesTime"] = str(int(time.time()))
    lines = [f"{key}={values[key]}" for key in SETTINGS_KEYS]
    # S22 writes version= at every start (facts §3.2); older versions never write it.
    if version is not None and Version.parse(version) >= S22:
        lines.append(f"version={version}")
    return lines


def account_lines(*, domain: str, server: str = "", label: str | None = None) -> list[str]:
    """The ``key=value`` lines of an [AccountN] section."""
    values = dict(_ACCOUNT_DEFAULTS)
    values.update(domain=domain, server=server, proxy="")
    if label is not None:
        values["label"] = label
    for key, value in values.items():
        if any(c in value for c in "\r\n\x00"):
            raise BridgeError(f"the account {key} cannot hold a line break or NUL: {value!r}")
    return [f"{key}={values.get(key, '')}" for key in ACCOUNT_KEYS]


def check_domain(domain: str) -> str:
    """``domain`` if it can be Account1's SIP domain: not blank (MicroSIP ignores an account
    without one, facts §3.5) and a single line."""
    if not domain.strip():
        raise BridgeError("the account needs a domain: MicroSIP ignores an account without one")
    if any(c in domain for c in "\r\n\x00"):
        raise BridgeError("the account's domain cannot hold a line break or NUL")
    return domain


def create_folder(
    path: Path | str,
    *,
    domain: str = DEFAULT_DOMAIN,
    server: str = "",
    version: str = DEFAULT_VERSION,
    contacts: Iterable[Contact] = (),
    overwrite: bool = False,
) -> SimFolder:
    """Create a portable MicroSIP folder: microsip.ini (UTF-16LE with a BOM and CRLF, as MicroSIP
    writes it, facts §3.2) with [Settings] and [Account1], and Contacts.xml (facts §4.2).

    ``domain`` is Account1's SIP domain (an account is valid only with one, facts §3.5);
    ``server`` is empty by default, so the simulated MicroSIP needs no registration. Refuses to
    replace an existing microsip.ini unless ``overwrite``.
    """
    check_domain(domain)
    Version.parse(version)
    folder = SimFolder(Path(path))
    if folder.ini.exists() and not overwrite:
        raise BridgeError(
            "already holds a microsip.ini (pass overwrite to replace it)", path=folder.ini
        )
    if folder.running_pid() is not None:
        raise BridgeError("a simulator is running on this folder; stop it first", path=folder.path)
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BridgeError(
            f"cannot create the folder: {exc.strerror or exc}", path=folder.path
        ) from exc
    lines = [
        "[Settings]",
        *settings_lines(version=version),
        "[Account1]",
        *account_lines(domain=domain, server=server),
    ]
    doc = IniDocument.from_text("".join(line + "\r\n" for line in lines), IniEncoding.UTF16LE)
    doc.save(folder.ini, backups=0)
    atomic_write(folder.contacts, serialize_contacts(contacts), backups=0)
    return folder


def open_folder(path: Path | str) -> SimFolder:
    """An existing folder with a microsip.ini (Contacts.xml is optional, as for MicroSIP)."""
    folder = SimFolder(Path(path))
    if not folder.path.is_dir():
        raise NotFoundError("no such folder (create it with --create)", path=folder.path)
    if not folder.ini.is_file():
        raise NotFoundError(
            f"no {INI_NAME} in this folder (create one with --create)", path=folder.path
        )
    return folder
