"""Desktop notifications for calls: a Windows toast with Answer and Open buttons, or a logged
no-op where the machine has no notification service."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("microsip_bridge.notify")

APP_NAME = "MicroSIP bridge"
ANSWER = "answer"
OPEN = "open"


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: the call it is about, what it says, the page Open shows."""

    call_id: str
    title: str
    body: str
    open_url: str
    incoming: bool


@dataclass(frozen=True, slots=True)
class ToastSpec:
    """What a toast shows, built as pure data (tested on any platform): its lines and its
    buttons as (label, argument)."""

    lines: tuple[str, ...]
    buttons: tuple[tuple[str, str], ...]


def build_notice(
    *,
    call_id: str,
    name: str,
    number: str,
    direction: str,
    event: str,
    open_url: str,
) -> Notice:
    """A notice for ``event`` of a call: the caller's name first, else the number."""
    who = name or number or "unknown caller"
    verb = {
        "incoming": "Incoming call",
        "ringing": "Incoming call",
        "missed": "Missed call",
        "answered": "Answered call",
        "connected": "Call connected",
        "busy": "Busy",
        "ended": "Call ended",
        "outgoing": "Calling",
    }.get(event, "Call")
    body = number if name and number and number != name else ""
    return Notice(call_id, f"{verb}: {who}", body, open_url, direction == "incoming")


def toast_spec(notice: Notice) -> ToastSpec:
    """The toast for ``notice``: Answer only while an incoming call may still ring (it answers
    the first ringing call, facts §1.6 /answer), Open when there is a page to open."""
    lines = tuple(line for line in (notice.title, notice.body) if line)
    buttons: list[tuple[str, str]] = []
    if notice.incoming and notice.title.startswith("Incoming"):
        buttons.append(("Answer", ANSWER))
    if notice.open_url:
        buttons.append(("Open", OPEN))
    return ToastSpec(lines, tuple(buttons))


class Notifier(Protocol):
    """Shows notices. ``show`` must not block for long (it runs on the launcher's pool)."""

    name: str

    def show(self, notice: Notice) -> None: ...


class NoNotifier:
    """No notification service (Linux without a desktop, CI): each notice is logged, once a
    line, and nothing is shown."""

    name = "none"

    def __init__(self) -> None:
        self.shown: list[Notice] = []
        self._said = False

    def show(self, notice: Notice) -> None:
        if not self._said:
            logger.info("no notification service on this machine: notices are only logged")
            self._said = True
        # What happened and the call, not who: the title holds the caller's name or number.
        logger.info("notice (not shown): %s, call %s", notice.title.split(":")[0], notice.call_id)
        self.shown.append(notice)


class ToastNotifier:
    """Windows toasts through windows-toasts: ``answer`` is called for the Answer button (the
    daemon's control service), ``open_url`` for Open."""

    name = "windows-toasts"

    def __init__(self, answer: Callable[[], None], open_url: Callable[[str], None]) -> None:
        self.answer = answer
        self.open_url = open_url
        self._toaster: Any = None

    def on_button(self, notice: Notice, argument: str) -> None:
        """What a click on a button (``argument``) of ``notice``'s toast does."""
        try:
            if argument == ANSWER:
                self.answer()
            elif argument == OPEN and notice.open_url:
                self.open_url(notice.open_url)
        except Exception as exc:
            logger.warning("the toast's %s button failed: %s", argument, exc)

    def show(self, notice: Notice) -> None:
        if sys.platform == "win32":
            from windows_toasts import (  # type: ignore[import-not-found,unused-ignore]
                InteractableWindowsToaster,
                Toast,
                ToastButton,
            )

            if self._toaster is None:
                self._toaster = InteractableWindowsToaster(APP_NAME)
            spec = toast_spec(notice)
            toast = Toast(list(spec.lines))
            for label, argument in spec.buttons:
                toast.AddAction(ToastButton(label, argument))

            def activated(args: Any) -> None:
                self.on_button(notice, str(getattr(args, "arguments", "") or OPEN))

            toast.on_activated = activated
            self._toaster.show_toast(toast)


def make_notifier(answer: Callable[[], None], open_url: Callable[[str], None]) -> Notifier:
    """A toast notifier on Windows when windows-toasts is installed, else :class:`NoNotifier`
    (desktop-notifier would need a D-Bus session and an event loop on Linux and macOS: not
    worth it for a daemon that usually runs headless there)."""
    if sys.platform == "win32":
        try:
            import windows_toasts  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            logger.info("windows-toasts is not installed: no notifications")
        else:
            return ToastNotifier(answer, open_url)
    return NoNotifier()
