"""Rules: every mistake in a [[rules]] table named, matching, hours and placeholders."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.actions.rules import (
    MAX_MATCH_INPUT,
    PLACEHOLDERS,
    Rule,
    firings,
    parse_hours,
    parse_rules,
    parse_template,
)
from microsip_bridge.errors import FileFormatError
from microsip_bridge.model import Call, CallState, Direction, Outcome, Transition
from microsip_bridge.numbers import Normaliser

PATH = Path("config.toml")
GB = Normaliser("GB")
POP: dict[str, Any] = {"name": "pop", "on": ["ringing"], "open": "https://crm.example/?q={e164}"}


def one(table: dict[str, Any], webhooks: tuple[str, ...] = ("crm",)) -> Rule:
    return parse_rules([table], path=PATH, webhook_names=webhooks)[0]


def call(number: str = "+442079460000", **kw: Any) -> Call:
    values: dict[str, Any] = {
        "call_id": "c1",
        "direction": Direction.INCOMING,
        "number": number,
        "state": CallState.RINGING,
        "started_at": 0.0,
    }
    values.update(kw)
    return Call(**values)


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").timestamp()


MONDAY_9 = at("2026-12-07 09:30")  # a Monday


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ({"colour": "red"}, "colour", "unknown key"),
        ({"name": 5}, "name", "must be a string"),
        ({"on": None}, "on", "missing"),
        ({"on": "ringing"}, "on", "non-empty list"),
        ({"on": []}, "on", "non-empty list"),
        ({"on": ["rang"]}, "on", "unknown event 'rang'"),
        ({"on": [1]}, "on", "list of strings"),
        ({"direction": "in"}, "direction", "incoming"),
        ({"number": "("}, "number", "not a valid regular expression"),
        ({"number": ""}, "number", "non-empty string"),
        ({"number": "1" * 501}, "number", "longer than 500"),
        ({"known": "yes"}, "known", "true or false"),
        ({"hours": "Mon-Fri"}, "hours", "not a time"),
        ({"hours": "Mon-Fry 08:00-18:00"}, "hours", "days are"),
        ({"hours": "08:00-25:00"}, "hours", "not a time"),
        ({"hours": "08:00-08:00"}, "hours", "empty"),
        ({"hours": "Mon-Fri 08:00-12:00,"}, "hours", "empty span"),
        ({"hours": 8}, "hours", "must be a string"),
        ({"open": "file:///etc/passwd"}, "open", "http:// or https://"),
        ({"open": "javascript:alert(1)"}, "open", "http:// or https://"),
        ({"open": "https://{raw}/x"}, "open", "host literally"),
        ({"open": "https://crm/{nope}"}, "open", "unknown placeholder {nope}"),
        ({"open": "https://crm/{e164:>20}"}, "open", "no format"),
        ({"open": "https://crm/{e164!r}"}, "open", "no format"),
        ({"open": "https://crm/{"}, "open", "literal brace"),
        ({"open": 5}, "open", "must be a string"),
        ({"run": "notepad {raw}"}, "run", "list of strings"),
        ({"run": []}, "run", "list of strings"),
        ({"run": ["{raw}"]}, "run", "literal path"),
        ({"run": ["log.exe", "{who}"]}, "run", "item 2: unknown placeholder {who}"),
        ({"run": ["C:\\Tools\\log.bat", "{raw}"]}, "run", "cmd.exe would read"),
        ({"run": ["log.CMD", "x{digits}"]}, "run", "cmd.exe would read"),
        ({"run": ["C:/Windows/System32/cmd.exe", "/c", "log", "{raw}"]}, "run", "a .bat"),
        ({"run": ["cmd", "/c", "{name}"]}, "run", "cmd.exe would read"),
        ({"webhook": "crmm"}, "webhook", "no [[webhooks]] target is named 'crmm'"),
        ({"notify": "yes"}, "notify", "true or false"),
        ({"once": 1}, "once", "true or false"),
        ({"open": None}, "open", "does nothing"),
    ],
)
def test_every_mistake_names_rule_and_key(change: dict[str, Any], key: str, message: str) -> None:
    table = {**POP, **change}
    table = {k: v for k, v in table.items() if v is not None}
    good = {"name": "first", "on": ["ended"], "notify": True}
    with pytest.raises(FileFormatError) as info:
        parse_rules([good, table], path=PATH, webhook_names=["crm"])
    text = str(info.value)
    name = table.get("name")
    where = "[[rules]] 2" + (f" ({name!r})" if isinstance(name, str) else "")
    assert text.startswith(f"config.toml, {where}, {key}: "), text
    assert message in text
    assert "\n" not in text


def test_a_good_rule_parses_every_key() -> None:
    rule = one(
        {
            "name": "crm pop",
            "on": ["ringing", "answered"],
            "direction": "incoming",
            "number": r"^\+44",
            "known": False,
            "hours": "Mon-Fri 08:00-18:00, Sat 10:00-12:00",
            "open": "https://crm.example/search?q={e164}",
            "run": ["C:\\Tools\\log.exe", "{digits}", "{name}"],
            "webhook": "crm",
            "notify": True,
        }
    )
    assert rule.on == {Transition.RINGING, Transition.ANSWERED}
    assert rule.direction is Direction.INCOMING
    assert len(rule.hours) == 2
    assert rule.describe()["on"] == ["ringing", "answered"]
    assert rule.label == "rule 1 ('crm pop')"


def test_batch_files_without_placeholders_are_allowed() -> None:
    rule = one({**POP, "run": ["C:\\Tools\\beep.bat", "--loud"]})
    assert [t.text for t in rule.run] == ["C:\\Tools\\beep.bat", "--loud"]
    assert one({**POP, "run": ["C:\\Tools\\batch.exe", "{raw}"]}).run


def test_no_webhook_targets_means_webhook_is_an_error() -> None:
    with pytest.raises(FileFormatError, match="none defined"):
        one({**POP, "webhook": "crm"}, webhooks=())


def test_matching_on_each_condition() -> None:
    rule = one({**POP, "direction": "incoming", "number": r"^\+44", "known": False})
    n = GB("020 7946 0000")
    assert rule.matches(call("020 7946 0000"), Transition.RINGING, n, MONDAY_9)
    assert not rule.matches(call("020 7946 0000"), Transition.ANSWERED, n, MONDAY_9)
    outgoing = call("020 7946 0000", direction=Direction.OUTGOING)
    assert not rule.matches(outgoing, Transition.RINGING, n, MONDAY_9)
    named = call("020 7946 0000", name="Ann")
    assert not rule.matches(named, Transition.RINGING, n, MONDAY_9)
    us = Normaliser("US")("212 555 0100")
    assert not rule.matches(call("212 555 0100"), Transition.RINGING, us, MONDAY_9)


def test_number_pattern_tries_every_form() -> None:
    n = GB("+44 20 7946 0000")
    for pattern in (r"^\+4420", r"^020 7946", r"^442079460000$"):
        rule = one({**POP, "number": pattern})
        assert rule.matches(call(n.raw), Transition.RINGING, n, MONDAY_9), pattern
    assert not one({**POP, "number": r"^0044"}).matches(
        call(n.raw), Transition.RINGING, n, MONDAY_9
    )


def test_extensions_and_sip_names_match_as_they_are() -> None:
    rule = one({**POP, "number": r"^1\d\d$"})
    assert rule.matches(call("101"), Transition.RINGING, GB("101"), MONDAY_9)
    rule = one({**POP, "number": r"@pbx$"})
    assert rule.matches(call("alice@pbx"), Transition.RINGING, GB("alice@pbx"), MONDAY_9)


def test_catastrophic_pattern_is_bounded_by_the_input() -> None:
    rule = one({**POP, "number": r"^(\d+)+$"})
    hostile = "1" * 5000 + "x"
    n = GB(hostile)
    started = time.perf_counter()
    rule.matches(call(hostile), Transition.RINGING, n, MONDAY_9)
    # 64 characters of backtracking would take far longer than this; the full 5000 forever.
    assert time.perf_counter() - started < 5
    assert MAX_MATCH_INPUT <= 64


@pytest.mark.parametrize(
    ("hours", "when", "holds"),
    [
        ("Mon-Fri 08:00-18:00", "2026-12-07 09:30", True),
        ("Mon-Fri 08:00-18:00", "2026-12-07 18:00", False),
        ("Mon-Fri 08:00-18:00", "2026-12-07 07:59", False),
        ("Mon-Fri 08:00-18:00", "2026-12-06 09:30", False),  # Sunday
        ("Mon-Fri 08:00-12:00, Mon-Fri 13:00-17:00", "2026-12-07 12:30", False),
        ("Mon-Fri 08:00-12:00, Mon-Fri 13:00-17:00", "2026-12-07 13:30", True),
        ("Fri 22:00-06:00", "2026-12-11 23:00", True),  # Friday night
        ("Fri 22:00-06:00", "2026-12-12 05:59", True),  # Saturday morning: Friday's span
        ("Fri 22:00-06:00", "2026-12-12 06:00", False),
        ("Fri 22:00-06:00", "2026-12-11 05:00", False),  # Friday morning: Thursday's span
        ("Fri-Mon 10:00-11:00", "2026-12-13 10:30", True),  # wraps over Sunday
        ("Fri-Mon 10:00-11:00", "2026-12-09 10:30", False),  # Wednesday
        ("Sat/Sun 00:00-24:00", "2026-12-06 23:59", True),
        ("09:00-10:00", "2026-12-06 09:15", True),  # no days: every day
    ],
)
def test_hours(hours: str, when: str, holds: bool) -> None:
    rule = one({**POP, "hours": hours})
    n = GB("+442079460000")
    assert rule.matches(call(), Transition.RINGING, n, at(when)) is holds


def test_placeholders_in_open_are_url_encoded_and_in_run_kept_whole() -> None:
    rule = one(
        {
            **POP,
            "open": "https://crm.example/s?q={raw}&n={name}&e={e164}&{{x}}",
            "run": ["log", "{raw}", "{name}", "{call_id}", "{direction}", "{event}", "{{x}}"],
        }
    )
    hostile = "1; touch /tmp/x & $(rm -rf ~) \"'`"
    c = call(hostile, name="Ann & Bob")
    fired = firings([rule], c, Transition.RINGING, GB(hostile), MONDAY_9)
    assert len(fired) == 1
    url = fired[0].url
    assert url is not None
    assert url.startswith("https://crm.example/s?q=1%3B%20touch%20%2Ftmp%2Fx%20%26%20%24%28")
    assert "&n=Ann%20%26%20Bob&" in url
    assert url.endswith("&{x}")
    assert fired[0].argv == ("log", hostile, "Ann & Bob", "c1", "incoming", "ringing", "{x}")


def test_outcome_and_duration() -> None:
    rule = one({**POP, "on": ["ended"], "run": ["log", "{outcome}", "{duration}"]})
    c = call(outcome=Outcome.ANSWERED, duration=61.6, state=CallState.ENDED)
    fired = firings([rule], c, Transition.ENDED, GB(c.number), MONDAY_9)
    assert fired[0].argv == ("log", "answered", "62")
    ringing = firings(
        [one({**POP, "run": ["log", "{outcome}|{duration}"]})],
        call(),
        Transition.RINGING,
        GB("1"),
        MONDAY_9,
    )
    assert ringing[0].argv == ("log", "|")


def test_rules_fire_in_file_order_and_only_matching_ones() -> None:
    rules = parse_rules(
        [
            {"name": "a", "on": ["ringing"], "notify": True},
            {"name": "b", "on": ["ended"], "notify": True},
            {"name": "c", "on": ["ringing", "ended"], "webhook": "crm"},
        ],
        path=PATH,
        webhook_names=["crm"],
    )
    fired = firings(rules, call(), Transition.RINGING, GB("1"), MONDAY_9)
    assert [f.rule.name for f in fired] == ["a", "c"]
    assert fired[1].webhook == "crm"


# --- properties -------------------------------------------------------------------------------

values = st.text(max_size=40)


@given(st.text(max_size=60))
def test_template_parser_only_raises_value_error(text: str) -> None:
    try:
        template = parse_template(text)
    except ValueError as exc:
        error = str(exc)
        assert error
    else:
        assert template.text == text


@given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40))
def test_literal_text_expands_to_itself(text: str) -> None:
    assert parse_template(text).expand({}) == text


@given(st.dictionaries(st.sampled_from(PLACEHOLDERS), values, min_size=1))
def test_url_expansion_round_trips_every_value(given_values: dict[str, str]) -> None:
    names = list(given_values)
    template = parse_template("https://h/?" + "&".join(f"{n}={{{n}}}" for n in names))
    url = template.expand(given_values, url=True)
    assert url.startswith("https://h/?")
    query = url.removeprefix("https://h/?").split("&")
    assert [unquote(p.split("=", 1)[1]) for p in query] == [given_values[n] for n in names]
    for part in query:
        assert not set(part.split("=", 1)[1]) & set("&#?/ ;\"'<>")


@given(st.dictionaries(st.sampled_from(PLACEHOLDERS), values, min_size=1))
def test_argv_expansion_keeps_each_value_one_item(given_values: dict[str, str]) -> None:
    names = list(given_values)
    templates = [parse_template(f"{{{n}}}") for n in names]
    assert [t.expand(given_values) for t in templates] == [given_values[n] for n in names]


@given(st.text(max_size=60))
def test_hours_parser_only_raises_value_error(text: str) -> None:
    try:
        spans = parse_hours(text)
    except ValueError as exc:
        error = str(exc)
        assert error
    else:
        assert spans


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "on", "direction", "number", "open", "run", "x"]),
            st.one_of(
                st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3), st.booleans()
            ),
        ),
        max_size=3,
    )
)
def test_parse_rules_only_raises_file_format_error(tables: list[dict[str, Any]]) -> None:
    try:
        parse_rules(tables, path=PATH, webhook_names=["crm"])
    except FileFormatError as exc:
        error = str(exc)
        assert error.startswith("config.toml, [[rules]] ")
        assert "\n" not in error


def test_once_counts_only_the_first_of_its_events_the_call_went_through() -> None:
    rule = one({**POP, "on": ["ringing", "answered"], "once": True})
    n = GB("+442079460000")
    rang = call(transitions=["incoming", "ringing"])
    assert rule.matches(rang, Transition.RINGING, n, MONDAY_9)
    answered = call(transitions=["incoming", "ringing", "answered"])
    assert not rule.matches(answered, Transition.ANSWERED, n, MONDAY_9)
    auto = call(transitions=["incoming", "answered", "connected"])
    assert rule.matches(auto, Transition.ANSWERED, n, MONDAY_9)
    twice = one({**POP, "on": ["ringing", "answered"]})
    assert twice.matches(answered, Transition.ANSWERED, n, MONDAY_9)
