"""Scenario files for the simulator: timed calls and commands, and how called parties behave.

A scenario is TOML or JSON with the same structure::

    description = "a morning at the front desk"      # optional

    [remote."5550001"]          # a party called by a dial command (over the channel or a step)
    then = "answer"             # answer | busy | fail | cancel | ring
    after = 1                   # seconds of ringing before that happens
    talk = 2                    # answer: seconds connected before `hangup` ends the call
                                # (default: until a command or the user hangs up)

    [remote."*"]                # any other number (default: answer after 2 s, talk forever)
    then = "busy"

    [[steps]]
    at = 0                      # seconds from the start
    incoming = "5551234"        # a call from this number (the caller's SIP user part)
    name = "Jane"               # the caller's display name
    then = "answer"             # answer | auto-answer | missed | decline | dnd | elsewhere | ring
    after = 1                   # seconds of ringing before `then` (auto-answer: the delay)
    talk = 3                    # answer, auto-answer: seconds connected (default 3)
    hangup = "remote"           # who ends it after `talk`: remote | local | never

    [[steps]]
    at = 10
    outgoing = "5550001"        # the user dials it; `then`/`after`/`talk`/`status`/`reason`
                                # as in [remote], else [remote] decides

    [[steps]]
    at = 20
    command = "/hangupall"      # a MicroSIP command, as over WM_COPYDATA

Incoming steps also take ``domain`` (the caller's domain; default the account's) and ``video``;
outgoing ``busy`` and ``fail`` take ``status`` (busy: 486, 600 or 603; fail: default 404) and
``fail`` a ``reason`` (the [Calls] info). Every key is checked: an unknown key, a wrong type or a
key that means nothing for the step is a one-line error naming the file and the step.
"""

from __future__ import annotations

import enum
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.fileio import read_limited
from microsip_bridge.microsip.commands import Verb, parse
from microsip_bridge.model import CallState
from microsip_bridge.sim.calls import (
    HangupBy,
    RemoteAction,
    RemoteBehaviour,
    check_failure_status,
)
from microsip_bridge.sim.records import SimCall
from microsip_bridge.sim.simulator import Simulator
from microsip_bridge.wire import MAX_NUMBER_CHARS

MAX_SCENARIO_BYTES = 1024 * 1024
DEFAULT_RING = 1.0  # seconds an incoming call rings before `then` when `after` is not given
DEFAULT_TALK = 3.0  # seconds an answered call lasts when `talk` is not given
SPEC_GAP = 1.0  # seconds between the calls given as --call specs
# A step's times: a day is more than any scripted call needs, and far from what a timer takes.
MAX_SECONDS = 86400


class StepKind(enum.StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    COMMAND = "command"


class IncomingAction(enum.StrEnum):
    """What happens to an incoming call ``after`` seconds of ringing."""

    ANSWER = "answer"  # the user answers: ring, answer, start ... end
    AUTO_ANSWER = "auto-answer"  # MicroSIP answers by itself (no ring unless `after` > 0)
    MISSED = "missed"  # the caller gives up: ring, end
    DECLINE = "decline"  # the user declines: ring, busy
    DND = "dnd"  # rejected by do-not-disturb: incoming only
    ELSEWHERE = "elsewhere"  # answered by another phone: ring, end ([Calls] type 3)
    RING = "ring"  # it rings until a command ends it


_KIND_KEYS = tuple(kind.value for kind in StepKind)
_COMMON = frozenset({"at", *_KIND_KEYS})
_INCOMING_KEYS = frozenset({"name", "domain", "video", "then", "after", "talk", "hangup"})
_OUTGOING_KEYS = frozenset({"video", "then", "after", "talk", "hangup", "status", "reason"})
_REMOTE_KEYS = frozenset({"then", "after", "talk", "hangup", "status", "reason"})
_TOP_KEYS = frozenset({"description", "remote", "steps"})


@dataclass(frozen=True, slots=True)
class Step:
    """One timed step. ``target`` is the number (incoming, outgoing) or the command text.

    Fields left None take their defaults when played (see the module docstring).
    """

    kind: StepKind
    target: str
    at: float = 0.0
    then: str | None = None
    after: float | None = None
    talk: float | None = None
    hangup: HangupBy | None = None
    status: int | None = None
    reason: str | None = None
    name: str = ""
    domain: str | None = None
    video: bool = False

    @property
    def incoming_action(self) -> IncomingAction:
        return IncomingAction(self.then or IncomingAction.ANSWER)

    def remote(self) -> RemoteBehaviour | None:
        """The called party's behaviour an outgoing step asks for (None: [remote] decides)."""
        if self.kind is not StepKind.OUTGOING or self.then is None:
            return None
        action = RemoteAction(self.then)
        default_after = 2.0 if action is RemoteAction.ANSWER else DEFAULT_RING
        talk = self.talk if self.talk is not None else DEFAULT_TALK
        return RemoteBehaviour(
            action,
            after=self.after if self.after is not None else default_after,
            talk=talk if action is RemoteAction.ANSWER else None,
            status=self.status,
            reason=self.reason,
            hangup=self.hangup or HangupBy.REMOTE,
        )

    def length(self) -> float:
        """Seconds the step's call lasts when nothing else interferes (0: open-ended)."""
        if self.kind is StepKind.COMMAND:
            return 0.0
        after = self.after if self.after is not None else DEFAULT_RING
        talk = self.talk if self.talk is not None else DEFAULT_TALK
        if self.kind is StepKind.OUTGOING:
            if self.then is None:
                return 0.0
            remote = RemoteAction(self.then)
            if remote is RemoteAction.RING:
                return 0.0
            if remote is RemoteAction.ANSWER:
                after = self.after if self.after is not None else 2.0
                return after + (0.0 if self.hangup is HangupBy.NEVER else talk)
            return after
        action = self.incoming_action
        if action in (IncomingAction.DND, IncomingAction.RING):
            return 0.0
        if action is IncomingAction.AUTO_ANSWER:
            after = self.after if self.after is not None else 0.0
        if action in (IncomingAction.ANSWER, IncomingAction.AUTO_ANSWER):
            return after + (0.0 if self.hangup is HangupBy.NEVER else talk)
        return after

    def to_dict(self) -> dict[str, Any]:
        """The step as a scenario file writes it (only the keys that were given)."""
        out: dict[str, Any] = {"at": self.at, self.kind.value: self.target}
        for key in ("then", "after", "talk", "status", "reason", "domain"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.hangup is not None:
            out["hangup"] = self.hangup.value
        if self.name:
            out["name"] = self.name
        if self.video:
            out["video"] = True
        return out


@dataclass(frozen=True, slots=True)
class Scenario:
    """Timed steps (in the order given; played by time) and the called parties' behaviours."""

    steps: tuple[Step, ...] = ()
    remotes: Mapping[str, RemoteBehaviour] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    def length(self) -> float:
        """When the last step's call should be over."""
        return max((s.at + s.length() for s in self.steps), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        if self.remotes:
            out["remote"] = {number: _remote_dict(rb) for number, rb in self.remotes.items()}
        out["steps"] = [step.to_dict() for step in self.steps]
        return out


def _remote_dict(rb: RemoteBehaviour) -> dict[str, Any]:
    out: dict[str, Any] = {"then": rb.then.value, "after": rb.after}
    if rb.talk is not None:
        out["talk"] = rb.talk
    if rb.status is not None:
        out["status"] = rb.status
    if rb.reason is not None:
        out["reason"] = rb.reason
    if rb.hangup is not HangupBy.REMOTE:
        out["hangup"] = rb.hangup.value
    return out


# --- reading ------------------------------------------------------------------------------------


class _Checker:
    """Type checks that fail with a one-line error naming the file and the place."""

    def __init__(self, path: Path | None, where: str) -> None:
        self.path = path
        self.where = where

    def fail(self, message: str) -> FileFormatError:
        return FileFormatError(message, path=self.path, where=self.where)

    def keys(self, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                raise self.fail(f"unknown key {key!r} (allowed here: {', '.join(sorted(allowed))})")

    def seconds(self, data: Mapping[str, Any], key: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{key} must be a number of seconds, not {value!r}")
        if value != value or value < 0:  # NaN is the one value unequal to itself
            raise self.fail(f"{key} must be zero or more seconds, not {value!r}")
        # Compared, not math.isfinite(): a JSON integer may be too large for a float.
        if value > MAX_SECONDS:
            raise self.fail(f"{key} must be at most {MAX_SECONDS} seconds (a day), not {value!r}")
        return float(value)

    def text(self, data: Mapping[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key} must be text, not {value!r}")
        if "\x00" in value:
            raise self.fail(f"{key} contains NUL")
        return value

    def choice(self, data: Mapping[str, Any], key: str, choices: type[enum.StrEnum]) -> str | None:
        value = self.text(data, key)
        if value is None:
            return None
        allowed = [c.value for c in choices]
        if value not in allowed:
            raise self.fail(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def status(self, data: Mapping[str, Any], busy: bool) -> int | None:
        value = data.get("status")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"status must be a SIP status code, not {value!r}")
        try:
            return check_failure_status(value, busy=busy)
        except BridgeError as exc:
            raise self.fail(exc.message) from None

    def only_with(self, data: Mapping[str, Any], key: str, ok: bool, what: str) -> None:
        if key in data and not ok:
            raise self.fail(f"{key!r} means nothing here: it goes with {what}")


def _parse_remote(data: object, check: _Checker) -> RemoteBehaviour:
    if not isinstance(data, dict):
        raise check.fail("a remote party is a table of then/after/talk/status/reason/hangup")
    check.keys(data, _REMOTE_KEYS)
    then = RemoteAction(check.choice(data, "then", RemoteAction) or RemoteAction.ANSWER)
    _behaviour_keys(data, check, then)
    after = check.seconds(data, "after")
    hangup = check.choice(data, "hangup", HangupBy)
    try:
        return RemoteBehaviour(
            then,
            after=after if after is not None else 2.0,
            talk=check.seconds(data, "talk"),
            status=check.status(data, busy=then is RemoteAction.BUSY),
            reason=check.text(data, "reason"),
            hangup=HangupBy(hangup or HangupBy.REMOTE),
        )
    except BridgeError as exc:
        raise check.fail(exc.message) from None


def _behaviour_keys(data: Mapping[str, Any], check: _Checker, then: RemoteAction) -> None:
    answer = then is RemoteAction.ANSWER
    check.only_with(data, "talk", answer, "then = 'answer'")
    check.only_with(data, "hangup", answer, "then = 'answer'")
    check.only_with(data, "status", then in (RemoteAction.BUSY, RemoteAction.FAIL), "busy or fail")
    check.only_with(data, "reason", then is RemoteAction.FAIL, "then = 'fail'")
    check.only_with(data, "after", then is not RemoteAction.RING, "anything but 'ring'")


def _parse_step(data: object, check: _Checker) -> Step:
    if not isinstance(data, dict):
        raise check.fail("a step is a table with `at` and one of incoming, outgoing, command")
    kinds = [k for k in _KIND_KEYS if k in data]
    if len(kinds) != 1:
        raise check.fail(
            "a step needs exactly one of incoming, outgoing, command"
            + (f" (it has {', '.join(kinds)})" if kinds else "")
        )
    kind = StepKind(kinds[0])
    target = check.text(data, kind.value)
    assert target is not None
    at = check.seconds(data, "at") or 0.0
    if kind is StepKind.COMMAND:
        check.keys(data, _COMMON)
        try:
            parse(target)
        except BridgeError as exc:
            raise check.fail(f"command {target!r} refused: {exc.message}") from None
        return Step(kind, target, at)
    if len(target) > MAX_NUMBER_CHARS:
        raise check.fail(f"the number has {len(target)} characters (at most {MAX_NUMBER_CHARS})")
    hangup_text = check.choice(data, "hangup", HangupBy)
    hangup = HangupBy(hangup_text) if hangup_text else None
    video = data.get("video", False)
    if not isinstance(video, bool):
        raise check.fail(f"video must be true or false, not {video!r}")
    if kind is StepKind.OUTGOING:
        check.keys(data, _COMMON | _OUTGOING_KEYS)
        try:
            cmd = parse(target)
        except BridgeError as exc:
            raise check.fail(f"cannot dial {target!r}: {exc.message}") from None
        if cmd.verb is not Verb.DIAL:
            raise check.fail(
                f"{target!r} is not a number to dial: MicroSIP would {cmd.description}"
            )
        then_text = check.choice(data, "then", RemoteAction)
        if then_text is None:
            for key in ("after", "talk", "hangup", "status", "reason"):
                check.only_with(data, key, False, "a `then`")
        else:
            _behaviour_keys(data, check, RemoteAction(then_text))
        then_remote = RemoteAction(then_text) if then_text else None
        return Step(
            kind,
            target,
            at,
            then=then_text,
            after=check.seconds(data, "after"),
            talk=check.seconds(data, "talk"),
            hangup=hangup,
            status=check.status(data, busy=then_remote is RemoteAction.BUSY),
            reason=check.text(data, "reason"),
            video=video,
        )
    check.keys(data, _COMMON | _INCOMING_KEYS)
    then = IncomingAction(check.choice(data, "then", IncomingAction) or IncomingAction.ANSWER)
    talks = then in (IncomingAction.ANSWER, IncomingAction.AUTO_ANSWER)
    check.only_with(data, "talk", talks, "answer or auto-answer")
    check.only_with(data, "hangup", talks, "answer or auto-answer")
    check.only_with(data, "after", then is not IncomingAction.DND, "anything but 'dnd'")
    check.only_with(data, "after", then is not IncomingAction.RING, "anything but 'ring'")
    domain = check.text(data, "domain")
    if not target and not domain:
        raise check.fail("an incoming call with an empty number needs a domain")
    return Step(
        kind,
        target,
        at,
        then=then.value if "then" in data else None,
        after=check.seconds(data, "after"),
        talk=check.seconds(data, "talk"),
        hangup=hangup,
        name=check.text(data, "name") or "",
        domain=domain,
        video=video,
    )


def parse_scenario(data: object, *, path: Path | None = None) -> Scenario:
    """A scenario from decoded TOML or JSON (see the module docstring); FileFormatError names
    the file and the step or remote party that is wrong."""
    top = _Checker(path, "scenario")
    if not isinstance(data, dict):
        raise top.fail("a scenario is a table (JSON object) with steps and remote parties")
    top.keys(data, _TOP_KEYS)
    description = top.text(data, "description") or ""
    remotes_data = data.get("remote", {})
    if not isinstance(remotes_data, dict):
        raise top.fail('remote must be a table of numbers, e.g. [remote."5550001"]')
    remotes: dict[str, RemoteBehaviour] = {}
    for number, entry in remotes_data.items():
        remotes[number] = _parse_remote(entry, _Checker(path, f"remote {number!r}"))
    steps_data = data.get("steps", [])
    if not isinstance(steps_data, list):
        raise top.fail("steps must be a list ([[steps]] in TOML)")
    steps = tuple(
        _parse_step(entry, _Checker(path, f"step {i}")) for i, entry in enumerate(steps_data, 1)
    )
    if not steps and not remotes:
        raise top.fail("the scenario has no steps and no remote parties")
    return Scenario(steps, remotes, description, path)


def load_scenario(path: Path | str) -> Scenario:
    """Read a ``.toml`` or ``.json`` scenario file."""
    path = Path(path)
    data = read_limited(path, MAX_SCENARIO_BYTES, "scenario")
    suffix = path.suffix.casefold()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"not UTF-8 (byte {exc.start})", path=path) from None
    if suffix == ".toml":
        try:
            decoded: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FileFormatError(f"not valid TOML: {exc}", path=path) from None
    elif suffix == ".json":
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileFormatError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path=path
            ) from None
    else:
        raise FileFormatError("a scenario file ends in .toml or .json", path=path)
    return parse_scenario(decoded, path=path)


# --- --call specs -------------------------------------------------------------------------------


def parse_call_spec(spec: str, *, at: float = 0.0) -> Step:
    """A step from the CLI's compact form ``KIND:NUMBER[:THEN[:AFTER[:TALK]]]`` (numbers without
    ``:``), e.g. ``incoming:5551234:answer:1:3``, ``outgoing:5550001:busy:2``,
    ``incoming:5551234:dnd``, or ``command:TEXT`` (the rest of the spec is the command)."""
    kind_text, sep, rest = spec.partition(":")
    check = _Checker(None, f"--call {spec!r}")
    if not sep or kind_text not in _KIND_KEYS:
        raise check.fail(
            "expected incoming:NUMBER[:THEN[:AFTER[:TALK]]], outgoing:... or command:TEXT"
        )
    data: dict[str, Any] = {"at": at}
    if kind_text == StepKind.COMMAND:
        data["command"] = rest
        return _parse_step(data, check)
    parts = rest.split(":")
    if len(parts) > 4:
        raise check.fail("too many ':' fields (a number with ':' belongs in a scenario file)")
    data[kind_text] = parts[0]
    names = ("then", "after", "talk")
    for name, value in zip(names, parts[1:], strict=False):
        if name == "then":
            data[name] = value
            continue
        try:
            data[name] = float(value)
        except ValueError:
            raise check.fail(f"{name} must be a number of seconds, not {value!r}") from None
    return _parse_step(data, check)


def steps_from_specs(specs: Iterable[str], *, start: float = 0.0) -> list[Step]:
    """--call specs one after the other: each starts SPEC_GAP seconds after the previous one
    should be over."""
    steps: list[Step] = []
    at = start
    for spec in specs:
        step = parse_call_spec(spec, at=at)
        steps.append(step)
        at = step.at + step.length() + SPEC_GAP
    return steps


# --- playing ------------------------------------------------------------------------------------


def play_step(sim: Simulator, step: Step) -> SimCall | None:
    """Do a step now, and schedule what follows from it (answer, hang-up ...)."""
    if step.kind is StepKind.COMMAND:
        sim.command(step.target, dw_data=1)
        return None
    if step.kind is StepKind.OUTGOING:
        return sim.outgoing(step.target, remote=step.remote(), video=step.video)
    action = step.incoming_action
    if action is IncomingAction.DND:
        return sim.reject_dnd(step.target, step.name, domain=step.domain, video=step.video)
    talk = step.talk if step.talk is not None else DEFAULT_TALK
    hangup = step.hangup or HangupBy.REMOTE
    if action is IncomingAction.AUTO_ANSWER:
        delay = step.after if step.after is not None else 0.0
        call = sim.incoming(
            step.target,
            step.name,
            domain=step.domain,
            video=step.video,
            auto_answer=True,
            auto_answer_delay=delay,
        )
    else:
        call = sim.incoming(step.target, step.name, domain=step.domain, video=step.video)
    if call.hidden or action is IncomingAction.RING:
        return call
    after = step.after if step.after is not None else DEFAULT_RING
    if action is IncomingAction.AUTO_ANSWER:
        after = step.after if step.after is not None else 0.0

    def follow() -> None:
        if action in (IncomingAction.ANSWER, IncomingAction.AUTO_ANSWER):
            if action is IncomingAction.ANSWER and call.state is CallState.RINGING:
                sim.answer(call)
            if call.state is CallState.CONNECTED:
                sim.end_after(call, talk, hangup)
            return
        if call.state is not CallState.RINGING:
            return
        if action is IncomingAction.MISSED:
            sim.caller_cancels(call)
        elif action is IncomingAction.DECLINE:
            sim.decline(call)
        elif action is IncomingAction.ELSEWHERE:
            sim.answered_elsewhere(call)

    sim.schedule(after, follow, f"{action.value} {call.id}")
    return call


def schedule_scenario(sim: Simulator, scenario: Scenario, *, offset: float = 0.0) -> None:
    """Queue the scenario's steps on ``sim`` (``offset`` seconds from now) and register its
    remote parties; :meth:`Simulator.run` then plays them."""
    sim.remotes.update(scenario.remotes)
    for step in sorted(scenario.steps, key=lambda s: s.at):
        sim.schedule(offset + step.at, _player(sim, step), f"step {step.kind.value} {step.target}")


def _player(sim: Simulator, step: Step) -> Callable[[], None]:
    def play() -> None:
        play_step(sim, step)

    return play


def run_scenario(sim: Simulator, scenario: Scenario) -> None:
    """Play a scenario to its end on a started simulator."""
    schedule_scenario(sim, scenario)
    sim.run(until_idle=True)
