"""MicroSIP's commands in the simulator: what SendMessage returns and what each command does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from microsip_bridge.microsip.commands import S20, Command, Verb, Version, parse
from microsip_bridge.sim.calls import CallMachine
from microsip_bridge.sim.records import CommandRecord, Schedule, SimCall
from microsip_bridge.sim.settings import IniSettings

_MUTE_STATES = frozenset(
    {
        Verb.MIC_MUTE,
        Verb.MIC_UNMUTE,
        Verb.MIC_TOGGLE,
        Verb.SPEAKER_MUTE,
        Verb.SPEAKER_UNMUTE,
        Verb.SPEAKER_TOGGLE,
    }
)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """An instant message MicroSIP would send for ``"<number> <text>"`` (facts §1.6 6)."""

    number: str
    text: str
    at: float


class Dispatcher:
    """Receives commands as MicroSIP's CommandLine does, and keeps what only commands change:
    the messages sent, the mute states, the UI actions, the in-memory password. The Simulator
    documents the public methods and calls them with its lock held."""

    def __init__(
        self,
        *,
        version: Version,
        calls: CallMachine,
        settings: IniSettings,
        commands: list[CommandRecord],
        now: Callable[[], float],
        schedule: Schedule,
        running: Callable[[], bool],
    ) -> None:
        self.version = version
        self.calls = calls
        self.settings = settings
        self.commands = commands
        self.now = now
        self.schedule = schedule
        self.running = running
        self.messages: list[SentMessage] = []
        self.ui_actions: list[str] = []
        self.mic_muted = False
        self.speaker_muted = False
        self.password_override: str | None = None

    def command(self, text: str, dw_data: int) -> int:
        if dw_data not in (1, 2) or (dw_data == 2 and self.version < S20):
            self._record(text, dw_data, None, 1, f"dwData={dw_data} is ignored")
            return 1
        if not self.running():
            self._record(text, dw_data, None, 1, "SIP stack not running: dropped")
            return 1
        cmd = parse(text, self.version)
        if dw_data == 2:
            self._record(text, dw_data, cmd.verb, 0, "queued")
            self.schedule(0.0, lambda: self.execute(cmd), f"command {text!r}")
            return 0
        self._record(text, dw_data, cmd.verb, 0, "done")
        self.execute(cmd)
        return 0

    def execute(self, cmd: Command) -> SimCall | None:
        if not self.running():
            return None
        verb = cmd.verb
        if verb is Verb.DIAL:
            return self.calls.place_call(cmd, None)
        if cmd.account is not None and not self.settings.switch_account(cmd.account):
            self._note(cmd, f"Account{cmd.account} does not exist: the command is dropped")
            return None
        if verb is Verb.MESSAGE:
            self.messages.append(SentMessage(cmd.target, cmd.message, self.now()))
        elif verb is Verb.ANSWER:
            self.calls.answer(None)
        elif verb is Verb.HANGUP_ALL:
            self.calls.hangup_all()
        elif verb is Verb.HANGUP_INCOMING:
            self.calls.hangup_incoming()
        elif verb is Verb.HANGUP_CALLING:
            self.calls.hangup_calling()
        elif verb is Verb.DTMF:
            self.calls.send_dtmf(cmd.digits)
        elif verb is Verb.TRANSFER:
            self.calls.transfer(cmd.target)
        elif verb is Verb.HOLD:
            self.calls.hold(None)
        elif verb is Verb.PASSWORD:
            self.password_override = cmd.password  # in memory only (facts §1.6 4)
        elif verb is Verb.SET_ACCOUNT_PASSWORD:
            # MicroSIP would save it RC2-encrypted with a key nobody has (facts §3.5); the
            # simulator cannot produce that, so it writes nothing.
            self._note(cmd, "a saved password is not simulated: nothing written")
        elif verb in _MUTE_STATES:
            self._set_mute(verb)
        elif verb is not Verb.ACCOUNT:
            # minimize, volume, dialer-only DTMF, show, nothing: no visible effect here.
            self.ui_actions.append(verb.value)
        return None

    def _set_mute(self, verb: Verb) -> None:
        self.ui_actions.append(verb.value)
        if verb is Verb.MIC_MUTE:
            self.mic_muted = True
        elif verb is Verb.MIC_UNMUTE:
            self.mic_muted = False
        elif verb is Verb.MIC_TOGGLE:
            self.mic_muted = not self.mic_muted
        elif verb is Verb.SPEAKER_MUTE:
            self.speaker_muted = True
        elif verb is Verb.SPEAKER_UNMUTE:
            self.speaker_muted = False
        else:
            self.speaker_muted = not self.speaker_muted

    def _record(self, text: str, dw_data: int, verb: Verb | None, result: int, note: str) -> None:
        self.commands.append(CommandRecord(text, dw_data, verb, result, note, self.now()))

    def _note(self, cmd: Command, note: str) -> None:
        self.commands.append(CommandRecord.noted(cmd, note, self.now()))
