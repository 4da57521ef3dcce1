"""The number MicroSIP's ``outgoing`` hook reports for a dial: MicroSIP's rewriting, pure.

What happens to a dial string between ``DialNumber`` and ``cmdOutgoingCall`` (facts §1.6 7,
§2.4), read from ``FormatNumber``/``GetSIPURI``/``ParseSIPURI`` (S19 and S22 global.cpp):

1. A ``,`` starts post-dial DTMF, but only when it is neither the first nor the last character:
   ``123,`` keeps its comma in the number.
2. Unless the call goes out on the local "call by IP" account: a number made only of
   ``0-9 * # . - ( ) / space`` (or any number starting with ``+``: the check lets everything
   through then) loses ``. - ( ) / space``; with a ``dialingPrefix`` and more than 3 characters
   left, a leading ``+`` is dropped and the prefix put in front.
3. Then the account's ``dialPlan``: ``|``-separated patterns, each tried in turn against the whole
   number; ``x`` is any character, ``.`` repeats what precedes it, ``<a:b>`` matches ``a`` and
   puts ``b`` in its place, ``<a>`` is a plain ``a``. The first pattern that matches wins; when
   none does the number becomes empty and nothing is dialled (an error box, no hook).
4. ``sip:`` is put in front when absent and ``@domain`` after a number without ``@``; the hook
   gets the user part: what lies between ``sip:`` and ``@``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from microsip_bridge.errors import CommandError
from microsip_bridge.microsip.accounts import active_account_id
from microsip_bridge.microsip.inifile import IniDocument

_PSTN_CHARS = frozenset("0123456789*#.-()/ ")
_PSTN_DROPPED = ".-()/ "
# ATL's regex shorthands (atlrx.h) in Python's syntax; dial plans are written for ATL.
_ATL_CLASSES = {
    "a": "[a-zA-Z0-9]",
    "b": "[ \\t]",
    "c": "[a-zA-Z]",
    "d": "[0-9]",
    "h": "[0-9a-fA-F]",
    "n": "(?:\\r\\n|\\r|\\n)",
    "q": "(?:\"[^\"]*\"|'[^']*')",
    "w": "[a-zA-Z]+",
    "z": "[0-9]+",
}


@dataclass(frozen=True, slots=True)
class DialProfile:
    """The settings of the account a dial goes out on that change the number it reports.

    ``dialing_prefix`` and ``dial_plan`` are that [AccountN]'s ``dialingPrefix`` and
    ``dialPlan``; ``domain`` its ``domain``; ``local_account``: MicroSIP also runs its local
    "call by IP" account (``enableLocalAccount=1``), which takes calls to an IP address or
    ``localhost`` outside the account's domain and applies neither prefix nor plan.
    """

    dialing_prefix: str = ""
    dial_plan: str = ""
    domain: str = ""
    local_account: bool = False


def split_post_dial(number: str) -> tuple[str, str]:
    """``(number, post-dial DTMF)`` as FormatNumber splits them: at the first comma, unless it is
    the first or the last character."""
    pos = number.find(",")
    if 0 < pos < len(number) - 1:
        return number[:pos], number[pos:]
    return number, ""


def is_pstn_number(number: str) -> bool:
    """MicroSIP's IsPSTNNnmber: only digits and ``* # . - ( ) / space``, or a leading ``+``
    (which, through a slip in the check, lets any other characters through too)."""
    if number.startswith("+"):
        return True
    return all(c in _PSTN_CHARS for c in number)


def _host(number: str) -> str:
    """The host part of ``user@host;params`` without its port, as SelectSIPAccount reads it."""
    _, at, rest = number.partition("@")
    if not at:
        return ""
    host = re.split(r"[;?]", rest, maxsplit=1)[0]
    return host.split(":", 1)[0]


def _is_ip_or_localhost(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


def goes_out_locally(number: str, profile: DialProfile) -> bool:
    """Whether MicroSIP places the call on its local account (SelectSIPAccount): the local
    account runs beside a valid one, and the target's host is an IP address or ``localhost``
    other than the account's domain."""
    host = _host(number)
    return (
        profile.local_account
        and bool(profile.domain)
        and host != profile.domain
        and _is_ip_or_localhost(host)
    )


def _atl_to_python(pattern: str) -> str:
    """An ATL regular expression (the dialect of MicroSIP's CAtlRegExp) in Python's syntax:
    ``{}`` capture, ``()`` group without capture, ``\\d``-style shorthands of ATL's own.
    Raises ValueError for what ATL would not parse either (or we do not model: ``!``)."""
    out: list[str] = []
    i = 0
    depth_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("a trailing backslash")
            nxt = pattern[i + 1]
            if not depth_class and nxt in _ATL_CLASSES:
                out.append(_ATL_CLASSES[nxt])
            else:
                out.append(re.escape(nxt))
            i += 2
            continue
        if depth_class:
            out.append(c if c not in "\\[" else "\\" + c)
            if c == "]":
                depth_class = False
        elif c == "[":
            depth_class = True
            out.append(c)
        elif c == "{":
            out.append("(")
        elif c == "}":
            out.append(")")
        elif c == "(":
            out.append("(?:")
        elif c in ")*+?.^$":
            out.append(c)
        elif c == "!":
            raise ValueError("ATL's '!' (not) is not modelled")
        else:
            out.append(re.escape(c))
        i += 1
    if depth_class:
        raise ValueError("an unclosed '['")
    return "".join(out)


def _plan_entry(token: str) -> tuple[str, list[str]]:
    """One dial-plan pattern as ``(ATL regex, replacements of its {groups} in order)``."""
    regex: list[str] = []
    replaces: list[str] = []
    group: list[str] | None = None
    for c in token:
        if group is None:
            if c == "<":
                group = []
            else:
                regex.append(c)
        elif c != ">":
            group.append(c)
        else:
            text = "".join(group)
            group = None
            if not text:
                continue
            match, colon, replace = text.partition(":")
            if not colon:
                regex.append(text)
            else:
                regex.append("{" + match + "}")
                replaces.append(replace)
    # The plan's own wildcards: '.' repeats, 'x'/'X' is any character.
    body = "".join(regex).replace(".", "*").replace("x", ".").replace("X", ".")
    return "^" + body + "$", replaces


def apply_dial_plan(number: str, dial_plan: str) -> str:
    """``number`` through the account's ``dialPlan`` (step 3 of the module docstring); an
    empty result means no pattern matched and MicroSIP dials nothing."""
    plan = dial_plan.strip(" ()")
    if not plan:
        return number
    for token in (t for t in plan.split("|") if t):
        atl, replaces = _plan_entry(token)
        try:
            regex = re.compile(_atl_to_python(atl))
        except (ValueError, re.error):
            continue  # ATL refuses to parse it: MicroSIP tries the next pattern
        found = regex.match(number)
        if found is None:
            continue
        if not replaces:
            return number
        out: list[str] = []
        prev = 0
        for index, replace in enumerate(replaces, start=1):
            start, end = found.span(index)
            if start < 0:
                start = end = prev
            out.append(number[prev:start])
            out.append(replace)
            prev = end
        out.append(number[prev:])
        return "".join(out)
    return ""


def format_number(number: str, profile: DialProfile) -> str:
    """FormatNumber: the number MicroSIP dials for the dial string ``number`` (post-dial DTMF
    cut off), with the prefix and the plan applied; empty when the plan matched nothing."""
    number, _ = split_post_dial(number)
    if goes_out_locally(number, profile):
        return number
    formatted = number
    if is_pstn_number(number):
        formatted = "".join(c for c in number if c not in _PSTN_DROPPED)
        if profile.dialing_prefix and len(formatted) > 3:
            formatted = profile.dialing_prefix + formatted.removeprefix("+")
    if profile.dial_plan:
        formatted = apply_dial_plan(formatted, profile.dial_plan)
    return formatted


def user_part(uri: str) -> str:
    """ParseSIPURI's user: between ``sip:`` (or the start) and the first ``@`` after it; empty
    when there is no ``@``."""
    start = uri.find("sip:")
    start = start + 4 if start >= 0 else 0
    at = uri.find("@", start)
    return uri[start:at] if at >= 0 else ""


def reported_number(dial_string: str, profile: DialProfile) -> str | None:
    """The number the ``outgoing`` hook will carry when MicroSIP dials ``dial_string`` (what
    a dial command's ``target`` + ``post_dial`` hold: scheme already stripped), or None when
    MicroSIP places no call for it (the dial plan matched nothing). facts §1.6 7, §2.4."""
    if not isinstance(dial_string, str):
        raise CommandError(f"a dial string must be text, not {type(dial_string).__name__}")
    formatted = format_number(dial_string, profile)
    if not formatted:
        return None
    uri = formatted if "sip:" in formatted.lower() else "sip:" + formatted
    if "@" not in uri:
        if not profile.domain:
            return ""  # no domain to append: the user part, hence the hook's argument, is empty
        uri += "@" + profile.domain
    return user_part(uri)


def dial_profile(doc: IniDocument, account: int | None = None) -> DialProfile:
    """The :class:`DialProfile` of ``[AccountN]`` for N = ``account`` (a dial's ``/account:N``),
    else the active account (``accountId``, facts §3.4). A missing account gives an empty
    profile: no prefix, no plan, no domain."""
    n = account if account is not None else active_account_id(doc)
    if n is None:
        n = 1
    section = f"Account{n}"

    def value(key: str, section: str = "Settings") -> str:
        return doc.get(section, key) or ""

    local = value("enableLocalAccount").strip() == "1"
    if n < 1:
        return DialProfile(local_account=True)
    return DialProfile(
        dialing_prefix=value("dialingPrefix", section),
        dial_plan=value("dialPlan", section),
        domain=value("domain", section).strip(),
        local_account=local,
    )
