"""Our own stand-ins for the real-world corpus: the bytes of every file under tests/data/{ini,
contacts,csv,vcard}.

The corpus (../shared/corpus) holds third-party files and stays outside the repository; these
files, written here byte by byte so that encodings and line ends are exact, give the suite the
same shapes: UTF-16LE inis with a BOM and their ANSI/UTF-8 originals, a [Calls] history written
by MicroSIP 3.21 and one by a 2016 fork, users' own cmd* commands, Contacts.xml as PBX scripts,
people and PowerShell write it, Google/Outlook/Thunderbird/MicroSIP CSV, vCard 2.1/3.0/4.0.
Names, numbers and hosts are invented (numbers in fictional ranges, hosts under .invalid).

``python -m tests.fixture_files`` rewrites the files; tests/test_fixtures_data.py checks that
they are what this module builds.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable, Iterable
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
FOLDERS = ("ini", "contacts", "csv", "vcard")
CRLF = "\r\n"

FILES: dict[str, Callable[[], bytes]] = {}


def fixture(name: str) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    """Register the builder of tests/data/<name>."""

    def register(build: Callable[[], bytes]) -> Callable[[], bytes]:
        FILES[name] = build
        return build

    return register


def utf16(text: str) -> bytes:
    """What MicroSIP keeps its ini in: UTF-16LE with a BOM (facts §3.2)."""
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def lines(*parts: Iterable[str] | str, newline: str = CRLF, final: bool = True) -> str:
    flat: list[str] = []
    for part in parts:
        flat.extend([part] if isinstance(part, str) else part)
    return newline.join(flat) + (newline if final else "")


# --- microsip.ini ------------------------------------------------------------------------------

# [Settings] as MicroSIP 3.2x writes it, in its order, with its defaults (facts §3.4).
SETTINGS_3_2X: tuple[tuple[str, str], ...] = (
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
    ("videoBitrate", ""),
    ("rport", "1"),
    ("sourcePort", "0"),
    ("rtpPortMin", "0"),
    ("rtpPortMax", "0"),
    ("dnsSrvNs", ""),
    ("dnsSrv", "0"),
    ("STUN", ""),
    ("enableSTUN", "0"),
    ("recordingPath", ""),
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
    ("mainX", "0"),
    ("mainY", "0"),
    ("mainW", "259"),
    ("mainH", "465"),
    ("messagesX", "0"),
    ("messagesY", "0"),
    ("messagesW", "0"),
    ("messagesH", "0"),
    ("ringinX", "0"),
    ("ringinY", "0"),
    *((f"callsWidth{i}", "0") for i in range(6)),
    *((f"contactsWidth{i}", "0") for i in range(3)),
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

# [AccountN] as MicroSIP 3.2x writes it, in its order (facts §3.5).
ACCOUNT_3_2X: tuple[tuple[str, str], ...] = (
    ("label", ""),
    ("server", ""),
    ("proxy", ""),
    ("domain", ""),
    ("username", ""),
    ("password", ""),
    ("authID", ""),
    ("displayName", ""),
    ("dialingPrefix", ""),
    ("dialPlan", ""),
    ("hideCID", "0"),
    ("voicemailNumber", ""),
    ("transport", ""),
    ("publicAddr", ""),
    ("SRTP", ""),
    ("registerRefresh", "300"),
    ("keepAlive", "15"),
    ("publish", "0"),
    ("ICE", "0"),
    ("allowRewrite", "0"),
    ("disableSessionTimer", "0"),
)
# The password as MicroSIP stores it: hex of whole 8-byte RC2 blocks (facts §3.5), invented.
PASSWORD_HEX = "5be80a33c71f92d4e6a0b85c3d17f9a2"


def section(
    name: str,
    defaults: Iterable[tuple[str, str]],
    extra: Iterable[tuple[str, str]] = (),
    **values: str,
) -> list[str]:
    """``[name]`` with the keys of ``defaults`` in order, ``values`` changed, ``extra`` appended."""
    keys = dict(defaults)
    unknown = set(values) - set(keys)
    assert not unknown, unknown
    keys.update(values)
    return [f"[{name}]", *(f"{k}={v}" for k, v in [*keys.items(), *extra])]


def calls(entries: Iterable[str]) -> list[str]:
    return ["[Calls]", *(f"{key}={value}" for key, value in enumerate(entries))]


# A history as MicroSIP 3.21 writes it (no version= line yet): 30 calls in slots 0-29 and
# callsLastKey=29; a Cyrillic name, a text "number" with a digits-only name, type 3 ("Answered
# Elsewhere", 3.22's own), two calls in the same second (slots 12 and 13), empty infos, the
# failure texts of a real PBX, and the same party under two spellings of its name.
HISTORY_CALLS = (
    "2231405;Бухгалтерия (Иванова);1;1730102400;0;",
    "reception;4410;0;1730102700;12;Call Ended",
    "reception;4410;0;1730102820;4;Call Ended",
    "2231405;2231405;0;1730103000;0;Server Internal Error",
    "2231405;2231405;0;1730103010;0;Server Internal Error",
    "2231405;Бухгалтерия (Иванова);1;1730189000;0;",
    "queue-7723;5096612;0;1740000000;31;Call Ended",
    "65096612;15096612;0;1740000001;0;Canceled",
    "5096612;Sales desk;1;1750000000;0;Gone",
    "5096612;Sales desk;1;1750000100;25;Call Ended",
    "7714;Warehouse;1;1750086400;0;Call Ended",
    "5096612;5096612;0;1750086401;0;Not Found",
    "7714;Warehouse;1;1750086460;0;Call Ended",
    "4475096612;4475096612;0;1750086460;0;Not Found",
    "09115096612;4475096612;0;1750086600;0;Canceled",
    "5096612;Sales desk;1;1751000000;14;Call Ended",
    "5096612;Sales desk;1;1751000090;8;Call Ended",
    "09115097788;4475097788;0;1751000200;9;Call Ended",
    "5096612;Sales desk;1;1751000300;17;Call Ended",
    "5096612;Sales desk;2;1751000400;0;Call Ended",
    "5096612;Sales desk;1;1751000500;3;Call Ended",
    "5096612;Sales desk;1;1751000600;0;Gone",
    "5096612;Sales desk;2;1751003000;0;Call Ended",
    "5096612;Sales desk;1;1751003100;0;Gone",
    "7714;Warehouse;1;1751090000;40;Call Ended",
    "5096612;Sales desk;1;1751090100;0;Gone",
    "5096612;Sales desk;1;1751090200;0;Call Ended",
    "5096612;Sales desk;1;1751090300;11;Call Ended",
    "5096612;Sales desk;3;1751090400;0;Answered Elsewhere",
    "5096612;SALES DESK;1;1760000000;0;Gone",
)


@fixture("ini/history-3.21.microsip.ini")
def history_ini() -> bytes:
    settings = section(
        "Settings",
        SETTINGS_3_2X,
        extra=[("callsLastKey", str(len(HISTORY_CALLS) - 1))],
        micAmplification="1",
        recordingPath="Recordings",
        recordingFormat="mp3",
        autoAnswer="all",
        autoAnswerDelay="1",
        enableLog="1",
        checkUpdatesTime="1759990000",
        mainX="640",
        mainY="212",
        lastCallNumber="09115097788",
    )
    account = section(
        "Account1",
        ACCOUNT_3_2X,
        label="front desk",
        server="pbx.example.invalid",
        proxy="pbx.example.invalid",
        domain="office.pbx.example.invalid",
        username="frontdesk",
        password=PASSWORD_HEX * 2,
        authID="frontdesk",
        transport="udp",
    )
    dialed = ["[Dialed]", "0=09115097788", "1=09115096612", "2=5096612", "3=2231405", "4=4410"]
    return utf16(lines(settings, account, calls(HISTORY_CALLS), dialed))


# A 2016 fork (its exe and ini were renamed, facts §3.1): the [Settings] keys of its time, only
# four cmd* keys, no callsLastKey, infos mostly empty, and an ANSI original.
FORK_CALLS = (
    "100;100;0;1457000000;3;",
    "0301234567;0301234567;0;1457000400;0;",
    "0301234567;Müller;0;1457003000;62;",
    "200;200;0;1457003100;0;",
    "0301234567;Müller;2;1457086000;0;",
    "0309876543;0309876543;0;1457090000;0;Request Terminated",
    "0309876543;0309876543;0;1457090030;12;",
    "100;100;0;1457170000;0;",
    "0305550199;0305550199;0;1457170500;48;",
    "0305550199;0305550199;2;1457171000;0;Request Terminated",
    "0305550199;0305550199;0;1457172000;0;",
    "200;200;0;1457172100;5;",
)
FORK_SETTINGS = (
    "accountId=1",
    "disableLocalAccount=0",
    "enableLog=0",
    "randomAnswerBox=0",
    "updatesInterval=",
    "checkUpdatesTime=1456990000",
    "autoAnswer=0",
    "denyIncoming=",
    "usersDirectory=",
    "singleMode=1",
    "localDTMF=1",
    "ringingSound=",
    'audioInputDevice=""',
    'audioOutputDevice=""',
    'audioRingDevice=""',
    "audioCodecs=G722/16000/1 PCMA/8000/1 PCMU/8000/1 GSM/8000/1",
    "VAD=0",
    "EC=0",
    "forceCodec=0",
    'videoCaptureDevice=""',
    "videoCodec=",
    "disableH264=0",
    "bitrateH264=",
    "disableH263=0",
    "bitrateH263=",
    "mainX=800",
    "mainY=200",
    "mainW=283",
    "mainH=391",
    *(f"callsWidth{i}=0" for i in range(5)),
    "volumeOutput=100",
    "volumeInput=100",
    "activeTab=0",
    "alwaysOnTop=0",
    "cmdCallStart=",
    "cmdCallEnd=",
    "cmdIncomingCall=",
    "cmdCallAnswer=",
)
FORK_ACCOUNT = (
    "server=192.0.2.10",
    "proxy=",
    "Country=82",
    "domain=192.0.2.10",
    "authID=",
    "username=0307770",
    f"password={PASSWORD_HEX * 3}",
    "displayName=",
    "transport=",
    "STUN=",
    "publicAddr=",
    "SRTP=",
    "publish=0",
    "ICE=0",
    "allowRewrite=0",
)


def fork_text() -> str:
    dialed = ["[Dialed]", "0=0305550199", "1=0309876543", "2=200", "3=0301234567", "4=100"]
    return lines("[Settings]", FORK_SETTINGS, "[Account1]", FORK_ACCOUNT, calls(FORK_CALLS), dialed)


@fixture("ini/fork-2016.microsip.ini")
def fork_ini() -> bytes:
    return utf16(fork_text())


@fixture("ini/original/fork-2016.ansi-crlf.ini")
def fork_ansi() -> bytes:
    # What the fork itself wrote: ANSI (cp1252 here, "Müller" is one byte per letter).
    return fork_text().encode("cp1252")


# Written by MicroSIP for a user without an account: no [AccountN], no [Calls] yet, speed-dial
# buttons in 3.22's shape (label;number;type;number2;presence) and [Dialed] holding what the
# user typed into the dial box, commands included.
@fixture("ini/no-calls.microsip.ini")
def no_calls_ini() -> bytes:
    settings = section(
        "Settings",
        SETTINGS_3_2X,
        accountId="0",
        audioCodecs="opus/48000/2 PCMA/8000/1",
        videoBitrate="256",
        recordingPath=r"C:\Users\Public\Recordings",
        checkUpdatesTime="1761000000",
        mainW="259",
        mainH="500",
        enableShortcuts="1",
        shortcutsBottom="1",
        lastCallNumber="*72",
    )
    shortcuts = ["[Shortcuts]", "0=Night service;*72;call;*73;0", "1=Queue;*45;call;;1"]
    dialed = ["[Dialed]", "0=*72", "1=*73", "2=/call:*45", "3=/call:*72", "4=dnd", "5=/dnd"]
    return utf16(lines(settings, shortcuts, dialed))


# Hand-made for deployment: key names in other cases, a key written twice (the profile API
# reads the first), keys of no MicroSIP version, no cmd* keys, no final line end.
PROVISIONING = (
    "[Settings]",
    "disableLocalAccount=1",
    "EnableLog=0",
    "updatesInterval=never",
    "denyIncoming=",
    "usersDirectory=http://directory.example.invalid/book.xml",
    "SingleMode=1",
    "LocalDTMF=1",
    "autoanswer=button",
    "denyIncoming=button",
    "audioCodecs=PCMA/8000/1 PCMU/8000/1",
    "accountId=1",
    "[Account1]",
    "Server=sip.example.invalid",
    "Domain=sip.example.invalid",
    "Proxy=",
    "Transport=udp",
    "ListenPort=",
    "Publish=0",
    "ICE=0",
    "allowRewrite=1",
)


@fixture("ini/provisioning.microsip.ini")
def provisioning_ini() -> bytes:
    return utf16(lines(PROVISIONING, final=False))


@fixture("ini/original/provisioning.ascii-lf.ini")
def provisioning_original() -> bytes:
    return lines(PROVISIONING, newline="\n", final=False).encode("ascii")


# A template saved by an installer script: every key MicroSIP writes, two empty accounts, empty
# cmd* keys, a non-ASCII path; its original is UTF-8 without a BOM with LF line ends.
def template_text(newline: str) -> str:
    settings = section(
        "Settings",
        SETTINGS_3_2X,
        autoAnswer="all",
        denyIncoming="",
        recordingPath=r"D:\Gravações",
        checkUpdatesTime="1700000000",
    )
    accounts = [*section("Account1", ACCOUNT_3_2X), *section("Account2", ACCOUNT_3_2X)]
    return lines(settings, accounts, newline=newline)


@fixture("ini/template.microsip.ini")
def template_ini() -> bytes:
    return utf16(template_text(CRLF))


@fixture("ini/original/template.utf8-lf.ini")
def template_original() -> bytes:
    return template_text("\n").encode("utf-8")


# MicroSIP 3.22 whose user set cmd* commands of their own (facts §2): quoted program paths with
# spaces, arguments, a value in quotes the profile API strips, a non-ASCII path.
USER_COMMANDS = {
    "cmdIncomingCall": r'"C:\Program Files\CRM Connector\crm-popup.exe" --incoming',
    "cmdCallRing": r'"C:\Tools\ring.cmd"',
    "cmdCallStart": r'powershell.exe -File "C:\Users\Zoë\log call.ps1"',
    "cmdCallEnd": r"C:\Tools\calllog.exe --append",
}


@fixture("ini/user-commands.microsip.ini")
def user_commands_ini() -> bytes:
    settings = section(
        "Settings",
        SETTINGS_3_2X,
        extra=[("callsLastKey", "2"), ("version", "3.22.3")],
        lastCallNumber="2001",
        checkUpdatesTime="1762000000",
        **USER_COMMANDS,
    )
    account = section(
        "Account1",
        ACCOUNT_3_2X,
        label="Office",
        server="pbx.example.invalid",
        domain="pbx.example.invalid",
        username="2000",
        password=PASSWORD_HEX,
        authID="2000",
        displayName="Agent 2000",
        transport="tls",
    )
    history = calls(
        [
            "2001;Helpdesk;0;1762000100;35;Call Ended",
            "2002;2002;2;1762000200;0;Missed Call",
            "2001;Helpdesk;1;1762000300;12;Call Ended",
        ]
    )
    return utf16(lines(settings, account, history, ["[Dialed]", "0=2001"]))


# --- Contacts.xml ------------------------------------------------------------------------------

EMPTY_3_22 = dict.fromkeys(
    (
        "firstname",
        "lastname",
        "phone",
        "mobile",
        "email",
        "address",
        "city",
        "state",
        "zip",
        "comment",
        "id",
    ),
    "",
)


def contact_element(**attributes: str) -> str:
    return "<contact " + " ".join(f'{k}="{v}"' for k, v in attributes.items()) + "/>"


# Generated by a PBX export script: a single-quoted declaration naming the encoding, info after
# directory, empty flags, Portuguese names, no line end after the root.
PBX_CONTACTS = (
    ("Joaquim", "6101", "Diretoria"),
    ("Fernanda", "6102", "Diretoria"),
    ("Manutenção", "6103", "Manutenção"),
    ("Conceição Araújo", "6104", "Financeiro"),
    ("João Gonçalves", "6105", "Comercial"),
    ("Sala de Reunião", "6110", "Salas"),
    ("Portaria", "6120", "Z"),
    ("Discador", "6199", "Z"),
)


@fixture("contacts/pbx-export.Contacts.xml")
def pbx_contacts() -> bytes:
    rows = [
        contact_element(
            name=name,
            number=number,
            **EMPTY_3_22,
            presence="",
            starred="",
            directory="",
            info=info,
        )
        for name, number, info in PBX_CONTACTS
    ]
    text = lines("<?xml version='1.0' encoding='utf-8'?>", "<contacts>", rows, "</contacts>")
    return text.removesuffix(CRLF).encode("utf-8")


def contact_3_20(name: str, number: str, info: str = "Ready", presence: str = "1") -> str:
    """A contact in MicroSIP 3.20's 16 attributes and order (facts §4.2)."""
    return contact_element(
        name=name, number=number, **EMPTY_3_22, info=info, presence=presence, directory="1"
    )


# Kept by hand in an editor: former staff commented out inside the root (a block and a line),
# trailing spaces and no-break spaces in names, blanks after "/>", an archive comment after it.
@fixture("contacts/hand-kept.Contacts.xml")
def hand_kept_contacts() -> bytes:
    text = lines(
        '<?xml version="1.0"?>',
        "<contacts>",
        "  <!--   COLABORADORES DESLIGADOS",
        contact_3_20("RAFAELA COSTA\xa0", "4051", "Not online"),
        contact_3_20("OTAVIO LIMA\xa0", "4052"),
        "",
        "-->",
        contact_3_20("*SP PORTARIA ", "4001") + "  ",
        contact_3_20("MARINA PRADO\xa0", "4002", "Not online"),
        contact_3_20("BRUNO ALVES", "4003"),
        "<!-- " + contact_3_20("VELHO RAMAL", "4099") + " -->",
        contact_3_20("CLARA NUNES ", "4004") + " ",
        "",
        "</contacts>",
        "",
        "<!-- Arquivo: ramais antigos da filial",
        contact_3_20("ANTIGO ", "4098"),
        "-->",
    )
    return text.encode("utf-8")


# Saved by MicroSIP 3.20 (exactly its 16 attributes, in its order) for a directory with
# repeated contacts (the same number, name and all) and names ending in a no-break space.
DUPLICATE_ROWS = (
    ("*NORTE RECEPCAO\xa0", "5001", "Ready"),
    ("*NORTE MONITORAMENTO\xa0", "5009", "Not online"),
    ("ANA PAULA\xa0", "5012", "Ready"),
    ("CARLOS MENDES\xa0", "5014", "Ready"),
    ("DENISE ROCHA\xa0", "5020", "Not online"),
    ("ANA PAULA\xa0", "5012", "Ready"),
    ("EDUARDO SILVA", "5021", "Ready"),
    ("FABIANA LOPES\xa0", "5022", "Ready"),
    ("CARLOS MENDES\xa0", "5014", "Ready"),
    ("GUSTAVO REIS\xa0", "5030", "Ready"),
)


@fixture("contacts/duplicates-3.20.Contacts.xml")
def duplicate_contacts() -> bytes:
    rows = [contact_3_20(name, number, info) for name, number, info in DUPLICATE_ROWS]
    return lines('<?xml version="1.0"?>', "<contacts>", rows, "</contacts>").encode("utf-8")


# What Windows PowerShell 5.1's Set-Content -Encoding utf8 leaves: a UTF-8 BOM, one line, an
# encoding in the declaration, only name and number, a number with spaces.
@fixture("contacts/powershell-bom.Contacts.xml")
def powershell_contacts() -> bytes:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?><contacts>'
        '<contact name="Νίκος Αλεξίου" number="+30 231 055 0199"/></contacts>' + CRLF
    )
    return codecs.BOM_UTF8 + text.encode("utf-8")


# An old MicroSIP (3.11 era) with no contacts: the root written out in full.
@fixture("contacts/empty-fork.Contacts.xml")
def empty_contacts() -> bytes:
    return lines('<?xml version="1.0"?>', "<contacts>", "</contacts>").encode("utf-8")


# --- CSV -----------------------------------------------------------------------------------------


def columns(header: str) -> list[str]:
    """A header row given as one comma-separated string, as exports write it."""
    return header.split(",")


def csv_text(rows: Iterable[Iterable[str]], newline: str = "\n") -> str:
    """Rows joined as exports write them: a field quoted when it needs to be."""

    def cell(value: str) -> str:
        if any(c in value for c in ',"\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(",".join(cell(v) for v in row) + newline for row in rows)


GOOGLE_HEADER = columns(
    "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,"
    "Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,"
    "Gender,Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,"
    "Priority,Subject,Notes,Group Membership,E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,"
    "E-mail 2 - Value,"
    + ",".join(f"Phone {i} - Type,Phone {i} - Value" for i in range(1, 8))
    + ",Address 1 - Type,Address 1 - Formatted,Address 1 - Street,Address 1 - City,"
    "Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,"
    "Address 1 - Extended Address,Organization 1 - Type,Organization 1 - Name,"
    "Organization 1 - Title,Website 1 - Type,Website 1 - Value"
)


def google_row(**cells: str) -> list[str]:
    unknown = set(cells) - set(GOOGLE_HEADER)
    assert not unknown, unknown
    return [cells.get(name, "") for name in GOOGLE_HEADER]


# Google Contacts' own "Google CSV": seven phones on one contact (Phone 1 and 2 are MicroSIP's
# mobile and phone whatever their type says), ":::" multi-values, doubled quotes, a quoted
# multi-line address, a starred contact and one with only an e-mail address.
@fixture("csv/google.csv")
def google_csv() -> bytes:
    phones = [
        ("Mobile", "+44 7700 900101"),
        ("Work", "+44 20 7946 0102"),
        ("Home", "+44 20 7946 0103"),
        ("Work Fax", "+44 20 7946 0104"),
        ("Pager", "+44 20 7946 0105"),
        ("Other", "+44 20 7946 0106"),
        ("Main", "+44 20 7946 0107"),
    ]
    amelia = google_row(
        **{
            "Name": "Dr. Amelia Rose Hartley Jr.",
            "Given Name": "Amelia",
            "Additional Name": "Rose",
            "Family Name": "Hartley",
            "Name Prefix": "Dr.",
            "Name Suffix": "Jr.",
            "Nickname": "Amy",
            "Notes": 'Call "after" lunch',
            "Group Membership": "* myContacts ::: Clients",
            "E-mail 1 - Type": "* Work",
            "E-mail 1 - Value": "amelia@example.invalid",
            "E-mail 2 - Type": "Home",
            "E-mail 2 - Value": "amy@example.invalid",
            **{f"Phone {i} - Type": kind for i, (kind, _) in enumerate(phones, 1)},
            **{f"Phone {i} - Value": value for i, (_, value) in enumerate(phones, 1)},
            "Address 1 - Type": "Work",
            "Address 1 - Formatted": "1 Example Road\nLondon SW1A 1AA\nUnited Kingdom",
            "Address 1 - Street": "1 Example Road",
            "Address 1 - City": "London",
            "Address 1 - Region": "Greater London",
            "Address 1 - Postal Code": "SW1A 1AA",
            "Address 1 - Country": "United Kingdom",
            "Organization 1 - Name": "Hartley & Co",
            "Website 1 - Type": "Profile",
            "Website 1 - Value": "hartley.example.invalid",
        }
    )
    bao = google_row(
        **{
            "Name": "Bao Tran",
            "Given Name": "Bao",
            "Family Name": "Tran",
            "Group Membership": "* myContacts ::: * starred",
            "Phone 1 - Type": "Mobile",
            "Phone 1 - Value": "+84 90 000 0301 ::: +84 90 000 0302",
            "E-mail 1 - Type": "Other",
            "E-mail 1 - Value": "bao@example.invalid ::: tran@example.invalid",
        }
    )
    mail_only = google_row(
        **{
            "Name": "Newsletter",
            "Group Membership": "* myContacts",
            "E-mail 1 - Value": "news@example.invalid",
        }
    )
    return csv_text([GOOGLE_HEADER, amelia, bao, mail_only]).encode("utf-8")


OUTLOOK_HEADER = columns(
    "First Name,Middle Name,Last Name,Title,Suffix,Web Page,Birthday,Anniversary,Notes,"
    "E-mail Address,E-mail 2 Address,E-mail 3 Address,Primary Phone,Home Phone,Home Phone 2,"
    "Mobile Phone,Pager,Home Fax,Home Address,Home Street,Home Street 2,Home Street 3,"
    "Home Address PO Box,Home City,Home State,Home Postal Code,Home Country,Spouse,Children,"
    "Manager's Name,Assistant's Name,Referred By,Company Main Phone,Business Phone,"
    "Business Phone 2,Business Fax,Assistant's Phone,Company,Job Title,Department,"
    "Business Address,Business Street,Business Street 2,Business Street 3,"
    "Business Address PO Box,Business City,Business State,Business Postal Code,Business Country,"
    "Other Phone,Other Fax,Other Address,Other Street,Other Street 2,Other Street 3,"
    "Other Address PO Box,Other City,Other State,Other Postal Code,Other Country,Callback,"
    "Car Phone,ISDN,Radio Phone,TTY/TDD Phone,Telex,Categories"
)


def outlook_row(header: list[str], **cells: str) -> list[str]:
    unknown = set(cells) - set(header)
    assert not unknown, unknown
    return [cells.get(name, "") for name in header]


# Google Contacts' "Outlook CSV" export: "myContacts;starred" categories, multi-line quoted home
# addresses, a row with only an e-mail address.
@fixture("csv/google-outlook.csv")
def google_outlook_csv() -> bytes:
    rows = [
        OUTLOOK_HEADER,
        outlook_row(
            OUTLOOK_HEADER,
            **{
                "First Name": "Ingrid",
                "Last Name": "Berg",
                "Mobile Phone": "40000101",
                "Categories": "myContacts;starred",
            },
        ),
        outlook_row(
            OUTLOOK_HEADER,
            **{
                "First Name": "Lars",
                "Last Name": "Berg",
                "Mobile Phone": "+4740000102",
                "Categories": "myContacts",
            },
        ),
        outlook_row(OUTLOOK_HEADER, **{"E-mail Address": "info@example.invalid"}),
        outlook_row(
            OUTLOOK_HEADER,
            **{
                "First Name": "Sigrid",
                "Last Name": "Dahl",
                "E-mail Address": "sigrid@example.invalid",
                "Mobile Phone": "+47 400 00 103",
                "Home Address": "Storgata 1\nTromsø, 9008\nNorway",
                "Home Street": "1 Storgata",
                "Home City": "Tromsø",
                "Home Postal Code": "9008",
                "Home Country": "Norway",
                "Categories": "Imported on 1/2/2025;myContacts",
            },
        ),
        outlook_row(
            OUTLOOK_HEADER,
            **{
                "First Name": "Åse",
                "Last Name": "Lund",
                "Mobile Phone": "+4740000104",
                "Home Address": "Fjordveien 2B\nÅlesund 6003\nNorway",
                "Home City": "Ålesund",
                "Categories": "myContacts",
            },
        ),
    ]
    return csv_text(rows).encode("utf-8")


OUTLOOK_LIVE_HEADER = columns(
    "First Name,Middle Name,Last Name,Title,Suffix,Nickname,Given Yomi,Surname Yomi,"
    "E-mail Address,E-mail 2 Address,E-mail 3 Address,Home Phone,Home Phone 2,Business Phone,"
    "Business Phone 2,Mobile Phone,Car Phone,Other Phone,Primary Phone,Pager,Business Fax,"
    "Home Fax,Other Fax,Company Main Phone,Callback,Radio Phone,Telex,TTY/TDD Phone,IMAddress,"
    "Job Title,Department,Company,Office Location,Manager's Name,Assistant's Name,"
    "Assistant's Phone,Company Yomi,Business Street,Business City,Business State,"
    "Business Postal Code,Business Country/Region,Home Street,Home City,Home State,"
    "Home Postal Code,Home Country/Region,Other Street,Other City,Other State,Other Postal Code,"
    "Other Country/Region,Personal Web Page,Spouse,Schools,Hobby,Location,Web Page,Birthday,"
    "Anniversary,Notes"
)


# An outlook.live.com export: no Name column, a contact with a first name only.
@fixture("csv/outlook-live.csv")
def outlook_live_csv() -> bytes:
    rows = [
        OUTLOOK_LIVE_HEADER,
        outlook_row(
            OUTLOOK_LIVE_HEADER, **{"First Name": "Nilsen", "Mobile Phone": "+47 400 11 000"}
        ),
        outlook_row(
            OUTLOOK_LIVE_HEADER,
            **{"First Name": "Kari", "Last Name": "Holm", "Mobile Phone": "400 22 000"},
        ),
    ]
    return csv_text(rows).encode("utf-8")


# An Outlook export of e-mail columns only: no number column at all (facts §4.5).
@fixture("csv/outlook-emails-only.csv")
def outlook_emails_only_csv() -> bytes:
    rows = [
        ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"],
        ["first@example.invalid", "second@example.invalid", "third@example.invalid"],
    ]
    return csv_text(rows).encode("utf-8")


THUNDERBIRD_HEADER = columns(
    "First Name,Last Name,Display Name,Nickname,Primary Email,Secondary Email,Screen Name,"
    "Work Phone,Home Phone,Fax Number,Pager Number,Mobile Number,Home Address,Home Address 2,"
    "Home City,Home State,Home ZipCode,Home Country,Work Address,Work Address 2,Work City,"
    "Work State,Work ZipCode,Work Country,Job Title,Department,Organization,Web Page 1,"
    "Web Page 2,Birth Year,Birth Month,Birth Day,Custom 1,Custom 2,Custom 3,Custom 4,Notes,"
)


# Thunderbird's export: a header ending in a comma, Display Name, five kinds of number.
@fixture("csv/thunderbird.csv")
def thunderbird_csv() -> bytes:
    row = outlook_row(
        THUNDERBIRD_HEADER,
        **{
            "First Name": "Marta",
            "Last Name": "Kowalczyk",
            "Display Name": "Marta K.",
            "Nickname": "mk",
            "Primary Email": "marta@example.invalid",
            "Secondary Email": "mk@example.invalid",
            "Work Phone": "+48 22 000 01 01",
            "Home Phone": "+48 22 000 01 02",
            "Fax Number": "+48 22 000 01 03",
            "Pager Number": "+48 22 000 01 04",
            "Mobile Number": "+48 600 000 105",
            "Home Address": "ul. Przykładowa 5",
            "Home City": "Kraków",
            "Home State": "małopolskie",
            "Home ZipCode": "30-001",
            "Home Country": "Poland",
            "Organization": "Example Sp. z o.o.",
        },
    )
    return csv_text([THUNDERBIRD_HEADER, row]).encode("utf-8")


# MicroSIP 3.22's own Export → CSV (facts §4.5): UTF-8 with a BOM, "\n", a field quoted only
# when it holds "," or '"', the 17 columns in its order, flags as 0/1.
@fixture("csv/microsip-3.22.csv")
def microsip_csv() -> bytes:
    header = columns(
        "Name,Number,First Name,Last Name,Phone Number,Mobile Number,E-mail Address,Address,"
        "City,State,Postal Code,Comment,Id,Info,Presence,Directory,Starred"
    )
    rows = [
        header,
        ["Reception", "100", "", "", "", "", "", "", "", "", "", "", "", "", "1", "0", "0"],
        [
            'Weiß, Jürgen "JW"',
            "+49 30 1234567",
            "Jürgen",
            "Weiß",
            "+49 30 7654321",
            "+49 170 7654321",
            "jw@example.invalid",
            "Hauptstraße 1",
            "München",
            "BY",
            "80331",
            "Prefers e-mail",
            "crm-42",
            "Ready",
            "0",
            "0",
            "1",
        ],
        ["Ελένη", "2001", "", "", "", "", "", "", "", "", "", "", "", "", "0", "1", "0"],
    ]
    return codecs.BOM_UTF8 + csv_text(rows).encode("utf-8")


# --- vCard ---------------------------------------------------------------------------------------


def qp(text: str, charset: str = "utf-8") -> str:
    """Quoted-printable of every non-ASCII byte and of spaces, as Android writes names."""
    return "".join(
        chr(b) if 33 <= b < 127 and b != ord("=") else f"={b:02X}" for b in text.encode(charset)
    )


def soft_wrap(value: str, width: int = 74) -> list[str]:
    """A QP value cut into lines ending in "=" (a soft break), never inside an "=XX"."""
    out: list[str] = []
    while len(value) > width:
        cut = width
        while "=" in value[cut - 2 : cut]:
            cut -= 1
        out.append(value[:cut] + "=")
        value = value[cut:]
    return [*out, value]


def qp_property(name: str, text: str) -> list[str]:
    head = f"{name};CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:"
    first, *rest = soft_wrap(head + qp(text))
    return [first, *rest]


# An Android 2.1 export: QP names and notes with soft breaks (one continuation starting with
# "=20"), cards with only an e-mail address, a card with four numbers (one finds no room), one
# number given three times, a folded base64 photo and its blank line.
@fixture("vcard/android-2.1.vcf")
def android_vcard() -> bytes:
    photo = base64.b64encode(bytes(range(256)) * 2).decode("ascii")
    photo_lines = [photo[:60], *(" " + photo[i : i + 72] for i in range(60, len(photo), 72))]
    cards = [
        ["EMAIL;PREF:office@example.invalid", "CATEGORIES:My Contacts"],
        ["EMAIL;PREF:noreply@example.invalid", "CATEGORIES:My Contacts"],
        [
            *qp_property("N", "Ñandú;;;;"),
            *qp_property("FN", "Ñandú Pérez "),
            "TEL;CELL;PREF:600100200",
            "CATEGORIES:My Contacts",
        ],
        [
            # A soft break right before an encoded space: the next line starts with "=20".
            "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Ib=C3=A1=C3=B1ez=",
            "=20Garc=C3=ADa;=C3=93scar;;;",
            "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=93scar=20Ib=C3=A1=C3=B1ez=",
            "=20Garc=C3=ADa",
            "TEL;CELL;PREF:600100300",
            "TEL;HOME:910100301",
            "TEL;CELL:600100302",
            "TEL;HOME:910100303",
            "CATEGORIES:My Contacts",
            *qp_property("NOTE", "Primera línea de la nota, bastante larga para cortarse en dos"),
            *qp_property("NOTE", "Segunda nota: llamar por la tarde, después de las cinco"),
        ],
        [
            *qp_property("N", "Núñez;Inés;;;"),
            *qp_property("FN", "Inés Núñez"),
            "TEL;CELL;PREF:600100400",
            "TEL;WORK:600100400",
            "TEL;WORK;FAX:600100400",
            "EMAIL;PREF;WORK:ines@example.invalid",
            *qp_property("ORG", "Compañía de Ejemplo, Sociedad Limitada"),
            "URL:www.example.invalid",
            f"PHOTO;ENCODING=BASE64;JPEG:{photo_lines[0]}",
            *photo_lines[1:],
            "",
        ],
    ]
    text = "".join(lines("BEGIN:VCARD", "VERSION:2.1", card, "END:VCARD") for card in cards)
    return text.encode("ascii")


# Outlook 2003's vCard 2.1: an N with prefix and suffix, a QP note whose CRLF is cut by a soft
# break ("=0D=" then "=0A"), four voice/fax numbers, a QP label, a base64 X.509 key indented by
# four spaces and followed by blank lines, then the e-mail address.
@fixture("vcard/outlook-2003-2.1.vcf")
def outlook_vcard() -> bytes:
    key = base64.b64encode(b"not a real certificate, only its shape " * 12).decode("ascii")
    key_lines = ["    " + key[i : i + 72] for i in range(0, len(key), 72)]
    card = [
        "N:Lindqvist;Henrik;;Dr.;Sr.",
        "FN:Dr. Henrik Lindqvist Sr.",
        "NICKNAME:Henke",
        "ORG:Lindqvist Consulting;Support",
        "TITLE:Engineer",
        "NOTE;ENCODING=QUOTED-PRINTABLE:First line=0D=0ANext line=0D=0A=0D=0ALast line, cut =",
        "here=0D=",
        "=0A",
        "TEL;WORK;VOICE:+46 8 000 001",
        "TEL;HOME;VOICE:+46 8 000 002",
        "TEL;CELL;VOICE:+46 70 000 003",
        "TEL;WORK;FAX:+46 8 000 004",
        "ADR;WORK:;Floor 3;Exempelgatan 7;Stockholm;AB;111 22;Sweden",
        "LABEL;WORK;ENCODING=QUOTED-PRINTABLE:Floor 3=0D=0AExempelgatan 7=0D=0AStockholm=",
        "=0D=0ASweden",
        "URL;WORK:http://consulting.example.invalid",
        "BDAY:19750101",
        "KEY;X509;ENCODING=BASE64:",
        *key_lines,
        "",
        "",
        "EMAIL;PREF;INTERNET:henrik@example.invalid",
        "REV:20240102T030405Z",
    ]
    return lines("BEGIN:VCARD", "VERSION:2.1", card, "END:VCARD").encode("ascii")


# Gmail's vCard 3.0: a grouped item1.TEL with its label, an X-ICQ number that is no phone, an
# escaped multi-line ADR, a grouped item2.ADR, and a NOTE folded in the middle of a word.
@fixture("vcard/gmail-3.0.vcf")
def gmail_vcard() -> bytes:
    card = [
        "FN:Priya Raman",
        "N:Raman;Priya;;;",
        "NICKNAME:Pri",
        "EMAIL;TYPE=INTERNET:priya@example.invalid",
        "X-ICQ:400123456",
        "TEL;TYPE=CELL:555 010 1111",
        "item1.TEL:555 010 2222",
        "item1.X-ABLabel:GRAND_CENTRAL",
        r"ADR;TYPE=HOME:;;12 Home Lane\nSpringfield\, SP 10001;;;;",
        "item2.ADR:;;34 Work Ave;Shelbyville;SP;10002;USA",
        "item2.X-ABLabel:Office",
        "ORG:Example Labs",
        "TITLE:Researcher",
        "BDAY:1985-04-12",
        r"NOTE:Met at the conference.\nPrefers calls in the morning.\nTeamRo",
        " le: Lead",
    ]
    return lines("BEGIN:VCARD", "VERSION:3.0", card, "END:VCARD").encode("utf-8")


# The Bat!'s vCard 2.1: QP in the writer's ANSI code page (cp1250) with no CHARSET, no number.
@fixture("vcard/thebat-2.1.vcf")
def thebat_vcard() -> bytes:
    card = [
        f"N;ENCODING=QUOTED-PRINTABLE:{qp('Nowak;Michał', 'cp1250')}",
        f"FN;ENCODING=QUOTED-PRINTABLE:{qp('Michał Nowak', 'cp1250')}",
        "EMAIL;PREF;INTERNET:michal.nowak@example.invalid",
        "REV:20090101T120000Z",
    ]
    return lines("BEGIN:VCARD", "VERSION:2.1", card, "END:VCARD").encode("ascii")


# vCard 4.0 as current address books write it: TYPE lists, PREF, a tel: URI, a card without FN
# but with N.
@fixture("vcard/contacts-4.0.vcf")
def vcard_40() -> bytes:
    cards = [
        [
            "FN:Zoë Martin",
            "N:Martin;Zoë;;;",
            "TEL;VALUE=uri;TYPE=cell;PREF=1:tel:+33-6-00-00-01-01",
            'TEL;TYPE="voice,home":+33 1 00 00 01 02',
            "TEL;TYPE=work:+33 1 00 00 01 03",
            "EMAIL;TYPE=work:zoe@example.invalid",
        ],
        ["N:Dubois;Luc;;;", "TEL;TYPE=cell:+33 6 00 00 02 01"],
    ]
    text = "".join(lines("BEGIN:VCARD", "VERSION:4.0", card, "END:VCARD") for card in cards)
    return text.encode("utf-8")


def main() -> None:
    for name, build in FILES.items():
        path = DATA / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build())
        print(f"wrote tests/data/{name}")


if __name__ == "__main__":
    main()
