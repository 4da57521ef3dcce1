"""Rules: config.toml's [[rules]] tables checked into :class:`Rule` objects, matched against
call transitions and expanded into what they would do (pure: nothing is fired here)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from microsip_bridge.errors import FileFormatError
from microsip_bridge.model import Call, Direction, Transition
from microsip_bridge.numbers import Number

KEYS = (
    "name",
    "on",
    "once",
    "direction",
    "number",
    "known",
    "hours",
    "open",
    "run",
    "webhook",
    "notify",
)
ACTIONS = ("open", "run", "webhook", "notify")
PLACEHOLDERS = (
    "e164",
    "national",
    "digits",
    "raw",
    "name",
    "call_id",
    "direction",
    "event",
    "outcome",
    "duration",
)
# `open` may only start a web page: a file: or custom-scheme URL can start programs through the
# OS's handlers, which is what `run` (an explicit argv) is for.
URL_SCHEMES = ("http://", "https://")
# A pattern is tried on this many characters of each form at most: numbers are short, and a
# bounded input keeps even a backtracking pattern from stalling the writer thread.
MAX_MATCH_INPUT = 64
MAX_PATTERN = 500
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Span:
    """One span of ``hours``: days of the week (0 = Monday) and minutes of the day, local
    time. ``start >= end`` is an overnight span: it runs into the next day's morning."""

    days: frozenset[int]
    start: int
    end: int

    def holds(self, when: datetime) -> bool:
        minute = when.hour * 60 + when.minute
        day = when.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or (
            (day - 1) % 7 in self.days and minute < self.end
        )


@dataclass(frozen=True, slots=True)
class Template:
    """A string with placeholders: literal text and placeholder names, in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, placeholder or None)

    def expand(self, values: Mapping[str, str], *, url: bool = False) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                value = values.get(name, "")
                out.append(quote(value, safe="") if url else value)
        return "".join(out)

    @property
    def literal(self) -> bool:
        return all(name is None for _, name in self.parts)


@dataclass(frozen=True, slots=True)
class Rule:
    """One checked [[rules]] table. ``index`` is its place in the file (1 = first)."""

    index: int
    name: str
    on: frozenset[Transition]
    direction: Direction | None = None
    number: re.Pattern[str] | None = None
    known: bool | None = None
    hours: tuple[Span, ...] = ()
    hours_text: str = ""
    open: Template | None = None
    run: tuple[Template, ...] = ()
    webhook: str | None = None
    notify: bool = False
    once: bool = False

    @property
    def label(self) -> str:
        return f"rule {self.index} ({self.name!r})" if self.name else f"rule {self.index}"

    def matches(self, call: Call, transition: Transition, number: Number, at: float) -> bool:
        """Whether the rule fires for ``transition`` of ``call`` (its number ``number``)
        happening at Unix time ``at`` (``hours`` are read in local time)."""
        if transition not in self.on:
            return False
        if self.once and call.transitions:
            # Only the first of the rule's events the call went through counts (the call's
            # transitions are in the order they fired, stored with it).
            first = next((t for t in call.transitions if t in self.on), transition.value)
            if first != transition.value:
                return False
        if self.direction is not None and call.direction is not self.direction:
            return False
        if self.known is not None and bool(call.name) != self.known:
            return False
        if self.number is not None:
            pattern = self.number
            if not any(pattern.search(form[:MAX_MATCH_INPUT]) for form in number.forms()):
                return False
        if self.hours:
            when = datetime.fromtimestamp(at)
            if not any(span.holds(when) for span in self.hours):
                return False
        return True

    def describe(self) -> dict[str, Any]:
        """The rule as `rules check --format json` prints it."""
        return {
            "index": self.index,
            "name": self.name,
            "on": [t.value for t in Transition if t in self.on],
            "once": self.once,
            "direction": self.direction.value if self.direction else None,
            "number": self.number.pattern if self.number else None,
            "known": self.known,
            "hours": self.hours_text or None,
            "open": self.open.text if self.open else None,
            "run": [t.text for t in self.run] or None,
            "webhook": self.webhook,
            "notify": self.notify,
        }


@dataclass(frozen=True, slots=True)
class Firing:
    """What one rule does for one transition: the expanded URL and argv, the webhook target's
    name and whether it notifies."""

    rule: Rule
    transition: Transition
    url: str | None = None
    argv: tuple[str, ...] = ()
    webhook: str | None = None
    notify: bool = False
    values: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "index": self.rule.index,
            "event": self.transition.value,
            "open": self.url,
            "run": list(self.argv) or None,
            "webhook": self.webhook,
            "notify": self.notify,
        }


def placeholder_values(call: Call, transition: Transition, number: Number) -> dict[str, str]:
    """What each placeholder stands for, for ``transition`` of ``call``."""
    return {
        "e164": number.e164,
        "national": number.national,
        "digits": number.digits,
        "raw": call.number,
        "name": call.name,
        "call_id": call.call_id,
        "direction": call.direction.value,
        "event": transition.value,
        "outcome": call.outcome.value if call.outcome is not None else "",
        "duration": "" if call.duration is None else str(round(call.duration)),
    }


def firings(
    rules: Sequence[Rule], call: Call, transition: Transition, number: Number, at: float
) -> list[Firing]:
    """What ``rules`` do for ``transition`` of ``call``, in file order."""
    out: list[Firing] = []
    values: dict[str, str] | None = None
    for rule in rules:
        if not rule.matches(call, transition, number, at):
            continue
        if values is None:
            values = placeholder_values(call, transition, number)
        out.append(
            Firing(
                rule,
                transition,
                url=rule.open.expand(values, url=True) if rule.open else None,
                argv=tuple(t.expand(values) for t in rule.run),
                webhook=rule.webhook,
                notify=rule.notify,
                values=values,
            )
        )
    return out


# --- parsing ---------------------------------------------------------------------------------


def parse_rules(
    tables: Sequence[Mapping[str, Any]], *, path: Path, webhook_names: Sequence[str] = ()
) -> list[Rule]:
    """config.toml's [[rules]] tables as :class:`Rule` objects. FileFormatError naming the
    file, the rule (index and name) and the key for the first thing wrong."""
    rules: list[Rule] = []
    names = set(webhook_names)
    for index, table in enumerate(tables, 1):
        rules.append(_parse_rule(index, table, path=path, webhook_names=names))
    return rules


def _parse_rule(
    index: int, table: Mapping[str, Any], *, path: Path, webhook_names: set[str]
) -> Rule:
    raw_name = table.get("name", "")
    name = raw_name if isinstance(raw_name, str) else ""
    where = f"[[rules]] {index}" + (f" ({name!r})" if name else "")

    def fail(key: str, message: str) -> FileFormatError:
        return FileFormatError(message, path=path, where=f"{where}, {key}")

    for key in table:
        if key not in KEYS:
            raise fail(key, f"unknown key (known: {', '.join(KEYS)})")
    if not isinstance(raw_name, str):
        raise fail("name", "must be a string")

    on_value = table.get("on")
    if on_value is None:
        raise fail("on", 'missing: the events the rule fires on, e.g. on = ["ringing"]')
    if not isinstance(on_value, list) or not on_value:
        raise fail("on", "must be a non-empty list of event names")
    on: set[Transition] = set()
    known_events = ", ".join(t.value for t in Transition)
    for item in on_value:
        if not isinstance(item, str):
            raise fail("on", "must be a list of strings")
        try:
            on.add(Transition(item))
        except ValueError:
            raise fail("on", f"unknown event {item!r} (known: {known_events})") from None

    once = False
    if "once" in table:
        if not isinstance(table["once"], bool):
            raise fail("once", "must be true or false")
        once = table["once"]

    direction: Direction | None = None
    if "direction" in table:
        value = table["direction"]
        if value not in ("incoming", "outgoing"):
            raise fail("direction", f'must be "incoming" or "outgoing", not {value!r}')
        direction = Direction(value)

    pattern: re.Pattern[str] | None = None
    if "number" in table:
        value = table["number"]
        if not isinstance(value, str) or not value:
            raise fail("number", "must be a non-empty string (a regular expression)")
        if len(value) > MAX_PATTERN:
            raise fail("number", f"longer than {MAX_PATTERN} characters")
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise fail("number", f"not a valid regular expression: {exc}") from None

    known: bool | None = None
    if "known" in table:
        if not isinstance(table["known"], bool):
            raise fail("known", "must be true or false")
        known = table["known"]

    hours: tuple[Span, ...] = ()
    hours_text = ""
    if "hours" in table:
        value = table["hours"]
        if not isinstance(value, str):
            raise fail("hours", 'must be a string such as "Mon-Fri 08:00-18:00"')
        try:
            hours = parse_hours(value)
        except ValueError as exc:
            raise fail("hours", str(exc)) from None
        hours_text = value

    open_template: Template | None = None
    if "open" in table:
        value = table["open"]
        if not isinstance(value, str):
            raise fail("open", "must be a string (a URL)")
        try:
            open_template = parse_template(value)
        except ValueError as exc:
            raise fail("open", str(exc)) from None
        if not value.lower().startswith(URL_SCHEMES):
            raise fail("open", "must be an http:// or https:// URL")
        authority = re.split(r"[/?#]", value.split("://", 1)[1], maxsplit=1)[0]
        if not authority or "{" in authority or "}" in authority:
            raise fail("open", "must name its host literally (no placeholder in the host)")

    run: tuple[Template, ...] = ()
    if "run" in table:
        value = table["run"]
        if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
            raise fail(
                "run", "must be a non-empty list of strings: the program, then its arguments"
            )
        templates = []
        for position, arg in enumerate(value):
            try:
                templates.append(parse_template(arg))
            except ValueError as exc:
                raise fail("run", f"item {position + 1}: {exc}") from None
        if not value[0].strip() or not templates[0].literal:
            raise fail("run", "the program (item 1) must be a literal path, with no placeholder")
        if _through_cmd(value[0]) and not all(t.literal for t in templates):
            # Windows runs these through cmd.exe, which reads & | % ^ in an argument as its own
            # syntax whatever the quoting (facts §2.3): a caller's number could run commands.
            raise fail(
                "run",
                "a .bat or .cmd file (or cmd.exe) cannot take placeholders: cmd.exe would read "
                "a number's & | % as commands; run a program (.exe, python, powershell -File)",
            )
        run = tuple(templates)

    webhook: str | None = None
    if "webhook" in table:
        value = table["webhook"]
        if not isinstance(value, str) or not value:
            raise fail("webhook", "must be the name of a [[webhooks]] target")
        if value not in webhook_names:
            targets = ", ".join(sorted(webhook_names)) or "none defined"
            raise fail("webhook", f"no [[webhooks]] target is named {value!r} ({targets})")
        webhook = value

    notify = False
    if "notify" in table:
        if not isinstance(table["notify"], bool):
            raise fail("notify", "must be true or false")
        notify = table["notify"]

    if open_template is None and not run and webhook is None and not notify:
        raise fail("open", "the rule does nothing: give it open, run, webhook or notify = true")
    return Rule(
        index,
        name,
        frozenset(on),
        direction=direction,
        number=pattern,
        known=known,
        hours=hours,
        hours_text=hours_text,
        open=open_template,
        run=run,
        webhook=webhook,
        notify=notify,
        once=once,
    )


def _through_cmd(program: str) -> bool:
    """Whether Windows would start ``program`` through cmd.exe."""
    name = re.split(r"[\\/]", program.strip().strip('"'))[-1].lower()
    return name in ("cmd", "cmd.exe") or name.endswith((".bat", ".cmd"))


def parse_template(text: str) -> Template:
    """``text`` as a :class:`Template`. ValueError for an unknown placeholder, a format spec
    or a lone brace (literal braces are written {{ and }})."""
    parts: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} (write a literal brace as {{{{ or }}}})") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}"
            raise ValueError(f"unknown placeholder {shown} (known: {', '.join(PLACEHOLDERS)})")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format or conversion")
        parts.append((literal, name))
    if not parts:
        parts.append(("", None))
    return Template(text, tuple(parts))


def parse_hours(text: str) -> tuple[Span, ...]:
    """``"Mon-Fri 08:00-18:00, Sat 10:00-12:00"`` as spans. Days are optional (every day), a
    day range may wrap (Fri-Mon), a span whose end is not after its start runs overnight.
    ValueError saying what is wrong."""
    spans: list[Span] = []
    for piece in text.split(","):
        words = piece.split()
        if not words:
            raise ValueError(f"empty span in {text!r}")
        if len(words) > 2:
            raise ValueError(f"{piece.strip()!r}: expected DAYS HH:MM-HH:MM")
        days = frozenset(range(7)) if len(words) == 1 else _days(words[0])
        times = words[-1].split("-")
        if len(times) != 2:
            raise ValueError(f"{words[-1]!r}: expected HH:MM-HH:MM")
        start, end = (_minutes(t) for t in times)
        if start == end:
            raise ValueError(f"{words[-1]!r}: the span is empty")
        spans.append(Span(days, start, end))
    return tuple(spans)


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split("/"):
        ends = item.lower().split("-")
        if len(ends) > 2 or not all(e in DAYS for e in ends):
            raise ValueError(f"{text!r}: days are Mon Tue Wed Thu Fri Sat Sun, or a range Mon-Fri")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        day = first
        out.add(day)
        while day != last:
            day = (day + 1) % 7
            out.add(day)
    return frozenset(out)


def _minutes(text: str) -> int:
    found = _TIME.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a time HH:MM")
    minutes = int(found.group(1)) * 60 + int(found.group(2))
    if minutes > 24 * 60:
        raise ValueError(f"{text!r} is after 24:00")
    return minutes
