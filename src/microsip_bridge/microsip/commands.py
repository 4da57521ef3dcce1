"""MicroSIP's command grammar, in one place: typed builders, a faithful parser and a validator."""

# What MicroSIP does with a command string (facts §1.5-1.7), read from the sources:
#
# * CmainDlg::CommandLine (S19 mainDlg.cpp:3538, S20 3675, S22 3980): trim; if the first and the
#   last character are both '"', drop them; empty -> nothing; "msip:" (case-sensitive) -> the rest
#   is a msip: verb, or if it is none of them (and not empty) goes to DialNumberFromCommandLine.
#   S19 checks /answer, /hangupall, /dtmf:, /transfer: here, on the whole string; S20 and S22 pass
#   everything else to DialNumberFromCommandLine, which checks them after its own rewriting.
# * DialNumberFromCommandLine (S19 3648, S20 3772, S22 4091): strip one scheme, case-insensitive
#   (tel:, sip:, callto:; S22 also dialpad:, dial:); S20+: a leading "//" and then one trailing "/";
#   S20+: "/account:N" anywhere (then "/password:"), cut out with an off-by-offset bug unless the
#   token is at the start or the end; S20+: the exact sub-commands and the /dtmf:, /password:,
#   /transfer: prefixes; otherwise DialNumber.
# * DialNumber: split at the first space: with text after it, an instant message instead of a call.
#   S22 replaces "%20" with a space and "%2B" with "+" in the number (case-sensitive), then trims.
#
# parse() runs that model for the S19, S20 and S22 rules, so every Command knows the range of
# versions on which its text means the same thing; the builders produce a text, parse it back and
# check that it means what they were asked, so builders and parser cannot drift apart.

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from microsip_bridge.errors import CommandError, UnsafeInputError
from microsip_bridge.microsip.crt import INT_MAX, WHITESPACE, utf16_len, wtoi

# WM_COPYDATA has no size limit, but nothing legitimate comes near this: a dial string is a number
# or a SIP URI, and an instant message sent as "<number> <text>" above ~1 KB no longer fits the
# 1300-byte UDP request size of RFC 3261 §18.1.1, so pjsip would need TCP to send it. The limit
# also keeps a runaway client from handing MicroSIP's UI thread megabytes (dwData=1 runs the
# command inside SendMessage, facts §1.4). Counted in UTF-16 code units, as MicroSIP sees it.
MAX_COMMAND_CHARS = 1024

DTMF_DIGITS = "0123456789*#ABCD"
ACCOUNT_SWITCH = "/account:"
PASSWORD_SWITCH = "/password:"  # noqa: S105 (a switch name, not a password)
# The schemes DialNumberFromCommandLine strips, and from which version (facts §1.6 1).
DIAL_SCHEMES: tuple[tuple[str, int], ...] = (
    ("tel:", 19),
    ("sip:", 19),
    ("callto:", 19),
    ("dialpad:", 22),
    ("dial:", 22),
)
_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A MicroSIP version, compared numerically (``Version(3, 22, 3) > Version(3, 20)``)."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """``"3.22.3"`` or ``"3.22"`` (the ``version`` key MicroSIP 3.22 writes, facts §3.4)."""
        parts = text.strip().split(".")
        if not 2 <= len(parts) <= 4 or not all(p.isdigit() and p.isascii() for p in parts):
            raise CommandError(f"not a MicroSIP version: {text!r} (expected e.g. 3.22.3)")
        numbers = [int(p) for p in parts[:3]]
        return cls(*numbers)

    def __str__(self) -> str:
        return (
            f"{self.major}.{self.minor}.{self.patch}"
            if self.patch
            else f"{self.major}.{self.minor}"
        )


S19 = Version(3, 19)
S20 = Version(3, 20)
S22 = Version(3, 22)
# The version the parser assumes when it is not told (the newest whose source was examined).
NEWEST_KNOWN = Version(3, 22, 3)
_RULES: tuple[tuple[int, Version], ...] = ((19, S19), (20, S20), (22, S22))


def _rules_for(version: Version) -> int:
    """Which examined source a version behaves like: newer ones like S22, older ones like S19."""
    if version >= S22:
        return 22
    if version >= S20:
        return 20
    return 19


class Channel(enum.Enum):
    """How a command reaches MicroSIP."""

    COPYDATA = "WM_COPYDATA"  # to the running instance (facts §1.3)
    COMMAND_LINE = "command line"  # microsip.exe <text>; start-up switches first (facts §1.2)


class Verb(enum.StrEnum):
    """What a command string makes MicroSIP do."""

    DIAL = "dial"
    MESSAGE = "message"
    ANSWER = "answer"
    HANGUP_ALL = "hangup-all"
    HANGUP_INCOMING = "hangup-incoming"
    HANGUP_CALLING = "hangup-calling"
    DTMF = "dtmf"
    DTMF_TO_DIALER = "dtmf-to-dialer"
    TRANSFER = "transfer"
    ACCOUNT = "account"
    HOLD = "hold"
    MINIMIZE = "minimize"
    MIC_MUTE = "mic-mute"
    MIC_UNMUTE = "mic-unmute"
    MIC_TOGGLE = "mic-toggle"
    SPEAKER_MUTE = "speaker-mute"
    SPEAKER_UNMUTE = "speaker-unmute"
    SPEAKER_TOGGLE = "speaker-toggle"
    MIC_UP = "mic-up"
    MIC_DOWN = "mic-down"
    SPEAKER_UP = "speaker-up"
    SPEAKER_DOWN = "speaker-down"
    # Parsed so that the simulator can model them; no builder produces them and validate()
    # refuses them.
    PASSWORD = "password"  # noqa: S105 (verb name) /password:X, an in-memory password override (S20+)
    # /account:N .../password:X: saved to the ini
    SET_ACCOUNT_PASSWORD = "set-account-password"  # noqa: S105 (verb name)
    NOTHING = "nothing"  # e.g. "msip:" or "/dtmf:" with nothing after it
    # Command line only (facts §1.2): checked against the whole command line at start-up.
    EXIT = "exit"
    START_MINIMIZED = "start-minimized"
    START_HIDDEN = "start-hidden"
    SHOW = "show"  # an empty command line shows the running window


_COMMAND_LINE_ONLY = frozenset({Verb.EXIT, Verb.START_MINIMIZED, Verb.START_HIDDEN, Verb.SHOW})
_NEVER_SENT = frozenset({Verb.PASSWORD, Verb.SET_ACCOUNT_PASSWORD})


@dataclass(frozen=True, slots=True, repr=False)
class Command:
    """One MicroSIP command: the exact text to send and what it does.

    ``min_version``/``max_version`` bound the versions on which ``text`` does this (``max_version``
    is exclusive; None = no known end). Only the fields that matter for ``verb`` are set:
    ``target`` (number or URI as MicroSIP will use it) and ``post_dial`` (the DTMF groups from the
    first comma on, facts §1.6 7) for DIAL; ``target`` and ``message`` for MESSAGE; ``target`` for
    TRANSFER; ``digits`` for DTMF; ``account`` when ``/account:N`` comes first (S20+).
    """

    text: str
    verb: Verb
    min_version: Version
    description: str
    max_version: Version | None = None
    target: str = ""
    post_dial: str = ""
    message: str = ""
    digits: str = ""
    account: int | None = None
    password: str = field(default="", repr=False)

    def __repr__(self) -> str:
        # A password command's text holds the password: keep it out of logs and tracebacks.
        text = self.text if not self.password else "<hidden: holds a password>"
        return (
            f"Command(text={text!r}, verb={self.verb.value!r}, min_version='{self.min_version}', "
            f"max_version={str(self.max_version) if self.max_version else None!r}, "
            f"description={self.description!r})"
        )

    @property
    def command_line_only(self) -> bool:
        """True for start-up switches, which only work as ``microsip.exe <text>`` (facts §1.2)."""
        return self.verb in _COMMAND_LINE_ONLY

    def works_on(self, version: Version) -> bool:
        return version >= self.min_version and (
            self.max_version is None or version < self.max_version
        )


def check_version(cmd: Command, version: Version) -> None:
    """Raise CommandError unless ``cmd`` does what it says on MicroSIP ``version``."""
    if version < cmd.min_version:
        raise CommandError(
            f"{cmd.text!r} ({cmd.description}) needs MicroSIP {cmd.min_version} or newer; "
            f"this is {version}"
        )
    if cmd.max_version is not None and version >= cmd.max_version:
        raise CommandError(
            f"{cmd.text!r} means {cmd.description!r} only before MicroSIP {cmd.max_version}; "
            f"on {version} it does something else"
        )


# --- input checks --------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    """Refuse what must never reach MicroSIP, whatever the version."""
    if not isinstance(text, str):
        raise CommandError(f"a command must be text, not {type(text).__name__}")
    length = utf16_len(text)
    if length > MAX_COMMAND_CHARS:
        raise UnsafeInputError(
            f"command of {length} characters refused (limit {MAX_COMMAND_CHARS}): no number, URI "
            "or message needs that much"
        )
    for i, c in enumerate(text):
        if c == "\x00":
            raise UnsafeInputError(
                f"command contains a NUL at position {i}: MicroSIP would see only what precedes it"
            )
        category = unicodedata.category(c)
        if category == "Cc":
            raise UnsafeInputError(
                f"command contains the control character U+{ord(c):04X} at position {i}"
            )
        if category == "Cs":
            raise UnsafeInputError(f"command contains a lone surrogate at position {i}")
    core = _trim_unquote(text).casefold()
    if core in ("/reset", "/resetnoask") or text.casefold() in ("/reset", "/resetnoask"):
        raise CommandError(
            f"{text.strip()!r} is refused: it makes MicroSIP delete its settings, accounts and "
            "contacts"
        )


def _trim_unquote(text: str) -> str:
    s = text.strip(WHITESPACE)
    if s and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]  # a lone '"' becomes empty, as CString.Mid(1, -1) does
    return s


def _target_problem(target: str, *, what: str, post_dial_ok: bool) -> str | None:
    """Why ``target`` (after MicroSIP's rewriting) is not a safe number/URI, or None."""
    if not target:
        return f"the {what} is empty"
    low = target.lower()
    if low.startswith("sips:"):
        return (
            "sips: URIs are not supported by MicroSIP: it does not strip 'sips:' and dials "
            "'sip:sips:...', a wrong or invalid target; use sip: or a number"
        )
    if low.startswith("msip:"):
        return "'msip:' is MicroSIP's command prefix, not a number"
    match = _SCHEME_LIKE.match(target)
    if match:
        return (
            f"{match.group(0)!r} looks like a URI scheme MicroSIP does not strip (it knows "
            "sip:, tel:, callto: and, on 3.22, dial: and dialpad:; only one of them)"
        )
    if target.startswith("/"):
        return (
            f"{target!r} starts with '/': MicroSIP would take it for a switch, or dial it as a "
            "number and show an error box"
        )
    for c in target:
        if c.isspace():
            return (
                f"the {what} contains whitespace ({c!r}): at a space MicroSIP splits it and sends "
                "the rest as an instant message instead of calling"
            )
    if '"' in target:
        return f"the {what} contains a double quote, which no number or SIP URI needs"
    low_all = target.casefold()
    if ACCOUNT_SWITCH in low_all or PASSWORD_SWITCH in low_all:
        return (
            f"the {what} contains '/account:' or '/password:', which MicroSIP 3.20+ acts on "
            "wherever they appear"
        )
    if not post_dial_ok and "," in target:
        return f"the {what} contains ',', which MicroSIP reads as post-dial DTMF"
    return None


def _post_dial_problem(post_dial: str) -> str | None:
    for c in post_dial:
        if c != "," and c not in DTMF_DIGITS:
            return f"post-dial DTMF may only hold the digits 0-9 * # A-D and ',' pauses, not {c!r}"
    return None


def _normalize_target(target: str, *, what: str, post_dial_ok: bool) -> str:
    """Strip the scheme and ``//...`` as MicroSIP would, so the text means the same everywhere."""
    if not isinstance(target, str):
        raise CommandError(f"the {what} must be text, not {type(target).__name__}")
    s = target.strip(WHITESPACE)
    low = s.lower()
    if low.startswith(("sips:", "msip:")):
        problem = _target_problem(s, what=what, post_dial_ok=post_dial_ok)
        raise CommandError(problem or f"not a valid {what}")
    for scheme, _since in DIAL_SCHEMES:
        if low.startswith(scheme):
            s = s[len(scheme) :]
            break
    if s.startswith("//"):
        s = s[2:]
        if s.endswith("/"):
            s = s[:-1]
    if "%20" in s:
        raise CommandError(
            f"the {what} contains '%20': MicroSIP 3.22 decodes it to a space inside the number "
            "and older versions send it escaped, so it means different things; remove it"
        )
    # 3.22 decodes %2B itself (facts §1.6 6); decoding it here gives every version the same '+'.
    s = s.replace("%2B", "+")
    problem = _target_problem(s, what=what, post_dial_ok=post_dial_ok)
    if problem:
        raise CommandError(problem)
    return s


def _normalize_dtmf(digits: str, *, what: str, commas: bool) -> str:
    if not isinstance(digits, str):
        raise CommandError(f"{what} must be text, not {type(digits).__name__}")
    # MicroSIP sends the characters as given; A-D are only DTMF in upper case, so map a-d.
    out = digits.strip(WHITESPACE).translate(str.maketrans("abcd", "ABCD"))
    allowed = DTMF_DIGITS + ("," if commas else "")
    for c in out:
        if c not in allowed:
            extra = ", and ',' for a one-second pause" if commas else ""
            raise CommandError(f"{what} may only hold 0-9 * # A-D{extra}; {c!r} is not allowed")
    if not out.strip(","):
        raise CommandError(f"{what} is empty")
    return out


# --- the parser --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Meaning:
    verb: Verb
    description: str
    target: str = ""
    post_dial: str = ""
    message: str = ""
    digits: str = ""
    account: int | None = None
    password: str = ""

    def key(self) -> tuple[object, ...]:
        return (
            self.verb,
            self.target,
            self.post_dial,
            self.message,
            self.digits,
            self.account,
            self.password,
        )


_MSIP_COMMON: dict[str, tuple[Verb, str]] = {
    "minimize": (Verb.MINIMIZE, "hide the main window"),
    "answer": (Verb.ANSWER, "answer the first ringing call"),
    "hangupall": (Verb.HANGUP_ALL, "hang up every call except ringing incoming ones"),
    "hold": (Verb.HOLD, "toggle hold on the selected call"),
    "micup": (Verb.MIC_UP, "microphone volume up"),
    "micdown": (Verb.MIC_DOWN, "microphone volume down"),
    "speakup": (Verb.SPEAKER_UP, "speaker volume up"),
    "speakdown": (Verb.SPEAKER_DOWN, "speaker volume down"),
}
_MSIP_S22: dict[str, tuple[Verb, str]] = {
    "micmute": (Verb.MIC_MUTE, "mute the microphone"),
    "micunmute": (Verb.MIC_UNMUTE, "unmute the microphone"),
    "speakmute": (Verb.SPEAKER_MUTE, "mute the speaker"),
    "speakunmute": (Verb.SPEAKER_UNMUTE, "unmute the speaker"),
    "micmuteclick": (Verb.MIC_TOGGLE, "toggle microphone mute"),
    "speakmuteclick": (Verb.SPEAKER_TOGGLE, "toggle speaker mute"),
}
# Before 3.22, micmute/speakmute were toggles and the other four did not exist (facts §1.5).
_MSIP_OLD: dict[str, tuple[Verb, str]] = {
    "micmute": (Verb.MIC_TOGGLE, "toggle microphone mute"),
    "speakmute": (Verb.SPEAKER_TOGGLE, "toggle speaker mute"),
}


def _transfer(value: str) -> _Meaning:
    if not value:
        return _Meaning(Verb.NOTHING, "nothing (a transfer with no target)")
    return _Meaning(Verb.TRANSFER, f"blind-transfer the selected call to {value}", target=value)


def _dtmf(value: str, rules: int) -> _Meaning:
    if not value:
        return _Meaning(Verb.NOTHING, "nothing (DTMF with no digits)")
    if rules >= 22 and value.endswith("?"):
        return _Meaning(
            Verb.DTMF_TO_DIALER, f"put {value[:-1]} into the dialer field", digits=value[:-1]
        )
    return _Meaning(Verb.DTMF, f"send DTMF {value} on the selected call", digits=value)


def _dial_number(params: str, rules: int) -> _Meaning:
    """CmainDlg::DialNumber: call, or send an instant message if there is text after a space."""
    space = params.find(" ")
    if space != -1:
        number, message = params[:space], params[space + 1 :].strip(WHITESPACE)
    else:
        number, message = params, ""
    if rules >= 22:
        number = number.replace("%20", " ").replace("%2B", "+")
    number = number.strip(WHITESPACE)
    if not number:
        return _Meaning(Verb.NOTHING, "show the main window (nothing to dial)")
    if message:
        return _Meaning(
            Verb.MESSAGE,
            f"send {message!r} to {number} as an instant message",
            target=number,
            message=message,
        )
    target, comma, rest = number.partition(",")
    post_dial = comma + rest
    extra = f", then DTMF {post_dial}" if post_dial else ""
    return _Meaning(Verb.DIAL, f"call {target}{extra}", target=target, post_dial=post_dial)


def _dial_from_command_line(s: str, rules: int) -> _Meaning:
    """CmainDlg::DialNumberFromCommandLine for the S19, S20 or S22 rules."""
    low = s.lower()
    for scheme, since in DIAL_SCHEMES:
        if since <= rules and low.startswith(scheme):
            s = s[len(scheme) :]
            break
    if rules >= 20 and s.startswith("//"):
        s = s[2:]
        if s.endswith("/"):
            s = s[:-1]
    account: int | None = None
    if rules >= 20:
        pos = s.find(ACCOUNT_SWITCH)
        if pos != -1:
            value = s[pos + len(ACCOUNT_SWITCH) :]
            pos2 = -1
            if value:
                pos2 = value.find(" ")
                if pos2 != -1:
                    value = value[:pos2]
                number = wtoi(value)
                if number > 0:
                    ppos = s.find(PASSWORD_SWITCH)
                    if ppos != -1:
                        return _Meaning(
                            Verb.SET_ACCOUNT_PASSWORD,
                            f"save a new password for Account{number}",
                            account=number,
                            password=s[ppos + len(PASSWORD_SWITCH) :],
                        )
                    account = number
            # CString::Delete(index, count) as MicroSIP calls it, bug included (facts §1.6 3):
            # the count should be 9 + pos2 + 1 but is pos + 9 + pos2 + 1.
            if pos2 == -1:
                s = s[: max(pos - 1, 0)]
            else:
                count = pos + len(ACCOUNT_SWITCH) + pos2 + 1
                s = s[:pos] + s[pos + count :]
    meaning = _subcommand(s, rules) if rules >= 20 else None
    if meaning is None:
        meaning = _dial_number(s, rules)
    if account is not None:
        if meaning.verb is Verb.NOTHING:
            meaning = _Meaning(
                Verb.ACCOUNT, f"make Account{account} the active account", account=account
            )
        else:
            meaning = replace(
                meaning,
                account=account,
                description=f"with Account{account} active: {meaning.description}",
            )
    return meaning


def _subcommand(s: str, rules: int) -> _Meaning | None:
    """The exact and prefix sub-commands (in CommandLine for S19, here for S20+)."""
    if s == "/answer":
        return _Meaning(Verb.ANSWER, "answer the first ringing call")
    if s == "/hangupall":
        return _Meaning(Verb.HANGUP_ALL, "hang up every call except ringing incoming ones")
    if rules >= 22 and s == "/hangupincoming":
        return _Meaning(Verb.HANGUP_INCOMING, "hang up every ringing incoming call")
    if rules >= 20 and s == "/hangupcalling":
        return _Meaning(Verb.HANGUP_CALLING, "hang up outgoing calls not yet answered")
    if s.startswith("/dtmf:"):
        return _dtmf(s[6:], rules)
    if rules >= 20 and s.startswith(PASSWORD_SWITCH):
        return _Meaning(
            Verb.PASSWORD,
            "use a password for the next registration (not saved)",
            password=s[len(PASSWORD_SWITCH) :],
        )
    if s.startswith("/transfer:"):
        return _transfer(s[10:])
    return None


def _startup_switch(text: str, rules: int) -> _Meaning | None:
    """The switches microsip.exe compares with its whole command line (facts §1.1, §1.2)."""
    if text == "":
        return _Meaning(Verb.SHOW, "show the running MicroSIP window")
    if text == "/exit":
        return _Meaning(Verb.EXIT, "close MicroSIP (it saves its settings first)")
    if text == "/minimized":
        return _Meaning(Verb.START_MINIMIZED, "start in the tray (nothing if already running)")
    if text == "/hidden" and rules < 22:
        return _Meaning(Verb.START_HIDDEN, "start hidden (nothing if already running)")
    return None


def _interpret(text: str, rules: int, channel: Channel) -> _Meaning:
    if channel is Channel.COMMAND_LINE:
        startup = _startup_switch(text, rules)
        if startup is not None:
            return startup
    s = _trim_unquote(text)
    if not s:
        return _Meaning(Verb.NOTHING, "nothing (empty command)")
    if s.startswith("msip:"):
        cmd = s[5:]
        table = {**_MSIP_COMMON, **(_MSIP_S22 if rules >= 22 else _MSIP_OLD)}
        if cmd in table:
            verb, description = table[cmd]
            return _Meaning(verb, description)
        if cmd.startswith("transfer_"):
            # Unlike /transfer:, msip:transfer_ passes an empty target on (facts §1.5).
            return _Meaning(
                Verb.TRANSFER, f"blind-transfer the selected call to {cmd[9:]!r}", target=cmd[9:]
            )
        if not cmd:
            return _Meaning(Verb.NOTHING, "nothing (msip: with no command)")
        return _dial_from_command_line(cmd, rules)
    if rules < 20:
        sub = _subcommand(s, rules)
        if sub is not None:
            return sub
    return _dial_from_command_line(s, rules)


def parse(
    text: str, version: Version | None = None, *, channel: Channel = Channel.COPYDATA
) -> Command:
    """Classify ``text`` exactly as MicroSIP ``version`` (default: the newest known) would.

    Returns the structured command (verb and arguments) with the range of versions on which the
    text means the same. Things MicroSIP would merely do badly (dial "/exit", a ``sips:`` URI)
    are returned as what they are; :func:`validate` refuses those. Raises UnsafeInputError for NUL,
    control characters, lone surrogates and over-long input, and CommandError for /reset and
    /resetnoask: those are never interpreted.

    With ``channel=COMMAND_LINE`` the text is ``microsip.exe``'s command line, with an instance
    already running (so /answer and /hangupall are forwarded to it).
    """
    _check_text(text)
    wanted = _rules_for(version or NEWEST_KNOWN)
    meanings = {rules: _interpret(text, rules, channel) for rules, _ in _RULES}
    meaning = meanings[wanted]
    order = [rules for rules, _ in _RULES]
    index = order.index(wanted)
    low = index
    while low > 0 and meanings[order[low - 1]].key() == meaning.key():
        low -= 1
    high = index
    while high < len(order) - 1 and meanings[order[high + 1]].key() == meaning.key():
        high += 1
    min_version = _RULES[low][1]
    max_version = _RULES[high + 1][1] if high + 1 < len(order) else None
    return Command(
        text=text,
        verb=meaning.verb,
        min_version=min_version,
        max_version=max_version,
        description=meaning.description,
        target=meaning.target,
        post_dial=meaning.post_dial,
        message=meaning.message,
        digits=meaning.digits,
        account=meaning.account,
        password=meaning.password,
    )


def validate(
    text: str, version: Version | None = None, *, channel: Channel = Channel.COPYDATA
) -> Command:
    """:func:`parse`, then refuse anything the builders would not produce, with the reason.

    With ``version``, also refuse a text that does not do the same on that version.
    """
    cmd = parse(text, version, channel=channel)
    if version is not None:
        check_version(cmd, version)
    problem = _refusal(cmd, text)
    if problem is None:
        return cmd
    if version is not None:
        newest = parse(text, channel=channel)
        if newest.min_version > version and _refusal(newest, text) is None:
            problem = (
                f"{text!r} ({newest.description}) needs MicroSIP {newest.min_version} or newer; "
                f"{version} would {cmd.description}"
            )
    raise CommandError(problem)


def _refusal(cmd: Command, text: str) -> str | None:
    """Why validate() refuses a parsed command, or None."""
    verb = cmd.verb
    if verb is Verb.NOTHING:
        return f"{text!r} makes MicroSIP do nothing ({cmd.description})"
    if verb in _NEVER_SENT:
        return (
            "passwords are never sent as commands: with /account:N they are saved to the ini, and "
            "command strings end up in logs; set them in microsip.ini while MicroSIP is stopped"
        )
    core = _trim_unquote(text)
    pos = core.find(ACCOUNT_SWITCH)
    if pos > 0 and " " in core[pos:]:
        return (
            "'/account:N' must be at the start or the end of the command: anywhere else MicroSIP "
            "3.20+ cuts out too many characters"
        )
    if verb in (Verb.DIAL, Verb.MESSAGE, Verb.TRANSFER):
        what = {
            Verb.DIAL: "number to dial",
            Verb.MESSAGE: "message recipient",
            Verb.TRANSFER: "transfer target",
        }[verb]
        problem = _target_problem(cmd.target, what=what, post_dial_ok=verb is Verb.DIAL)
        if problem and verb is Verb.DIAL and cmd.target in ("/exit", "/minimized", "/hidden"):
            problem += f"; {cmd.target} works only as microsip.exe {cmd.target}"
        if problem is None and verb is Verb.DIAL:
            problem = _post_dial_problem(cmd.post_dial)
        if problem is None and verb is Verb.MESSAGE and ACCOUNT_SWITCH in cmd.message.casefold():
            problem = "a message text cannot contain '/account:': MicroSIP 3.20+ acts on it"
        return problem
    if verb in (Verb.DTMF, Verb.DTMF_TO_DIALER):
        bad = [c for c in cmd.digits if c not in DTMF_DIGITS]
        if bad:
            return f"DTMF digits may only be 0-9 * # A-D, not {bad[0]!r}"
    return None


# --- builders ----------------------------------------------------------------------------------


def _build(text: str, verb: Verb, **expected: object) -> Command:
    """Parse the built text back with the newest rules and check it does what was asked."""
    cmd = validate(
        text, channel=Channel.COMMAND_LINE if verb in _COMMAND_LINE_ONLY else Channel.COPYDATA
    )
    if cmd.verb is not verb or any(getattr(cmd, k) != v for k, v in expected.items()):
        raise CommandError(f"{text!r} would not {verb.value} in MicroSIP ({cmd.description})")
    return cmd


def dial(target: str, *, dtmf: str | None = None, account: int | None = None) -> Command:
    """Call a number or SIP URI, optionally sending DTMF after it answers.

    ``target`` may be a number, ``user@host``, or a ``sip:``/``tel:``/``callto:`` (or
    ``dial:``/``dialpad:``) URI with ``//`` and a trailing ``/``; the scheme is stripped here as
    MicroSIP would strip it, so the text works on every version. ``sips:`` is refused (MicroSIP
    cannot dial it), and so is whitespace (it would send a message instead). Commas in ``target``
    or ``dtmf`` are one-second pauses before DTMF digit groups (facts §1.6 7). ``account=N`` first
    makes AccountN the active account (MicroSIP 3.20+; N >= 1).
    """
    number = _normalize_target(target, what="number to dial", post_dial_ok=True)
    base, comma, post_dial = number.partition(",")
    post = comma + post_dial
    if post:
        problem = _post_dial_problem(post)
        if problem:
            raise CommandError(problem)
    if dtmf is not None:
        post += "," + _normalize_dtmf(dtmf, what="post-dial DTMF", commas=True)
    text = base + post
    if account is not None:
        text = f"{_account_token(account)} {text}"
    return _build(text, Verb.DIAL, target=base, post_dial=post, account=account)


def _account_token(account: int) -> str:
    if isinstance(account, bool) or not isinstance(account, int):
        raise CommandError(f"an account number must be an integer, not {account!r}")
    if not 1 <= account <= INT_MAX:
        raise CommandError(
            f"account {account} cannot be selected: MicroSIP acts only on /account:N with N >= 1 "
            "(the local account is accountId=0 in the ini)"
        )
    return f"{ACCOUNT_SWITCH}{account}"


def message(number: str, text: str) -> Command:
    """Send ``text`` as a SIP instant message, using MicroSIP's ``"<number> <text>"`` form.

    That form is what MicroSIP offers on purpose (facts §1.6 6, §7): the text after the first
    space of a dial string is sent as a MESSAGE instead of calling.
    """
    to = _normalize_target(number, what="message recipient", post_dial_ok=False)
    if not isinstance(text, str):
        raise CommandError(f"the message must be text, not {type(text).__name__}")
    body = text.strip(WHITESPACE)
    if not body:
        raise CommandError("the message is empty: MicroSIP would call the number instead")
    if ACCOUNT_SWITCH in body.casefold() or PASSWORD_SWITCH in body.casefold():
        raise CommandError(
            "a message cannot contain '/account:' or '/password:': MicroSIP 3.20+ acts on them "
            "anywhere in the command"
        )
    return _build(f"{to} {body}", Verb.MESSAGE, target=to, message=body)


def dtmf(digits: str, *, dialer_only: bool = False) -> Command:
    """Send DTMF on the selected call; ``dialer_only`` only types them into the dialer (3.22).

    MicroSIP silently ignores /dtmf: while its dialer shows its own DTMF button (facts §1.6 4).
    Lower-case a-d are sent as A-D.
    """
    digits = _normalize_dtmf(digits, what="DTMF digits", commas=False)
    if dialer_only:
        return _build(f"/dtmf:{digits}?", Verb.DTMF_TO_DIALER, digits=digits)
    return _build(f"/dtmf:{digits}", Verb.DTMF, digits=digits)


def transfer(number: str) -> Command:
    """Blind-transfer the call in the selected tab to ``number`` (facts §1.6 4)."""
    to = _normalize_target(number, what="transfer target", post_dial_ok=False)
    return _build(f"/transfer:{to}", Verb.TRANSFER, target=to)


def account(n: int) -> Command:
    """Make AccountN the active account; MicroSIP saves that and re-registers (3.20+)."""
    return _build(_account_token(n), Verb.ACCOUNT, account=n)


def mic_toggle(version: Version) -> Command:
    """Toggle microphone mute: ``msip:micmuteclick`` on 3.22, ``msip:micmute`` before it."""
    text = "msip:micmuteclick" if version >= S22 else "msip:micmute"
    return _built_for(text, Verb.MIC_TOGGLE, version)


def speaker_toggle(version: Version) -> Command:
    """Toggle speaker mute: ``msip:speakmuteclick`` on 3.22, ``msip:speakmute`` before it."""
    text = "msip:speakmuteclick" if version >= S22 else "msip:speakmute"
    return _built_for(text, Verb.SPEAKER_TOGGLE, version)


def _built_for(text: str, verb: Verb, version: Version) -> Command:
    cmd = validate(text, version)
    if cmd.verb is not verb:
        raise CommandError(f"{text!r} would not {verb.value} on MicroSIP {version}")
    return cmd


# Every command that takes no argument: verb -> (the text its builder sends, the builder's
# docstring). _build parses each text back, so this table cannot drift from the grammar above.
SIMPLE_COMMANDS: dict[Verb, tuple[str, str]] = {
    # /answer and /hangupall: facts §1.6 4.
    Verb.ANSWER: ("/answer", "Answer the first incoming call that is still ringing."),
    Verb.HANGUP_ALL: ("/hangupall", "Hang up every call except incoming calls still ringing."),
    Verb.HANGUP_INCOMING: (
        "/hangupincoming",
        "Hang up (reject) every incoming call still ringing (MicroSIP 3.22).",
    ),
    Verb.HANGUP_CALLING: (
        "/hangupcalling",
        "Hang up outgoing calls that are not connected yet (MicroSIP 3.20+).",
    ),
    Verb.HOLD: ("msip:hold", "Toggle hold on the call in the selected tab."),
    Verb.MINIMIZE: ("msip:minimize", "Hide MicroSIP's main window."),
    Verb.MIC_MUTE: (
        "msip:micmute",
        "Mute the microphone (3.22; on 3.19/3.20 the same text toggles, see :func:`mic_toggle`).",
    ),
    Verb.MIC_UNMUTE: ("msip:micunmute", "Unmute the microphone (3.22)."),
    Verb.SPEAKER_MUTE: (
        "msip:speakmute",
        "Mute the speaker (3.22; on 3.19/3.20 the same text toggles, see :func:`speaker_toggle`).",
    ),
    Verb.SPEAKER_UNMUTE: ("msip:speakunmute", "Unmute the speaker (3.22)."),
    Verb.MIC_UP: ("msip:micup", "Microphone volume up, like the dialer's + button."),
    Verb.MIC_DOWN: ("msip:micdown", "Microphone volume down."),
    Verb.SPEAKER_UP: ("msip:speakup", "Speaker volume up."),
    Verb.SPEAKER_DOWN: ("msip:speakdown", "Speaker volume down."),
    # /exit and /minimized: facts §1.2, §1.9.
    Verb.EXIT: (
        "/exit",
        """Close MicroSIP cleanly: run ``microsip.exe /exit`` (on the command line only).

        MicroSIP saves its settings and exits, as with its jump list's "Exit" task; it is how the
        bridge stops MicroSIP before editing the ini. Over WM_COPYDATA the same text would be
        dialled.
        """,
    ),
    Verb.START_MINIMIZED: (
        "/minimized",
        "``microsip.exe /minimized``: start in the tray; nothing if already running.",
    ),
}


def build(verb: Verb) -> Command:
    """The command for a verb that takes no argument (:data:`SIMPLE_COMMANDS`).

    The others have builders of their own: :func:`dial`, :func:`message`, :func:`dtmf`,
    :func:`transfer`, :func:`account`, :func:`mic_toggle`, :func:`speaker_toggle`.
    """
    spec = SIMPLE_COMMANDS.get(verb)
    if spec is None:
        raise CommandError(f"{verb.value!r} is not a command without arguments: use its builder")
    return _build(spec[0], verb)


def _simple(verb: Verb, name: str = "") -> Callable[[], Command]:
    """The public builder of one :data:`SIMPLE_COMMANDS` entry, documented from the table."""

    def builder() -> Command:
        return build(verb)

    builder.__name__ = builder.__qualname__ = name or verb.value.replace("-", "_")
    builder.__doc__ = SIMPLE_COMMANDS[verb][1]
    return builder


answer = _simple(Verb.ANSWER)
hangup_all = _simple(Verb.HANGUP_ALL)
hangup_incoming = _simple(Verb.HANGUP_INCOMING)
hangup_calling = _simple(Verb.HANGUP_CALLING)
hold = _simple(Verb.HOLD)
minimize = _simple(Verb.MINIMIZE)
mic_mute = _simple(Verb.MIC_MUTE)
mic_unmute = _simple(Verb.MIC_UNMUTE)
speaker_mute = _simple(Verb.SPEAKER_MUTE)
speaker_unmute = _simple(Verb.SPEAKER_UNMUTE)
mic_up = _simple(Verb.MIC_UP)
mic_down = _simple(Verb.MIC_DOWN)
speaker_up = _simple(Verb.SPEAKER_UP)
speaker_down = _simple(Verb.SPEAKER_DOWN)
exit_ = _simple(Verb.EXIT, "exit_")
start_minimized = _simple(Verb.START_MINIMIZED)


# --- the WM_COPYDATA payload --------------------------------------------------------------------

COPYDATA_SYNC = 1  # CommandLine() runs inside SendMessage (facts §1.4)
COPYDATA_ASYNC = 2  # posted to MicroSIP's own queue; 3.20+ only


def encode_copydata(
    command: Command | str, asynchronous: bool = True, *, version: Version | None = None
) -> tuple[int, bytes]:
    """``(dwData, payload)`` for the WM_COPYDATA that delivers ``command`` (facts §1.3, §1.4).

    The payload is UTF-16LE with the 2-byte NUL terminator MicroSIP needs (it ignores cbData).
    ``asynchronous`` picks dwData=2, which never blocks the sender on a modal error box but
    needs 3.20+ (3.19 ignores it). Strings and Commands alike are validated again here, so
    nothing refused by :func:`validate` can be sent.
    """
    text = command.text if isinstance(command, Command) else command
    if isinstance(command, Command) and command.command_line_only:
        raise CommandError(
            f"{text!r} works only as a start-up switch (microsip.exe {text}); sent over "
            "WM_COPYDATA it would be dialled as a number"
        )
    cmd = validate(text, version)
    if asynchronous and version is not None and version < S20:
        raise CommandError(
            f"MicroSIP {version} ignores asynchronous WM_COPYDATA (dwData=2 needs 3.20+); "
            "send it synchronously"
        )
    payload = cmd.text.encode("utf-16-le") + b"\x00\x00"
    return (COPYDATA_ASYNC if asynchronous else COPYDATA_SYNC), payload
