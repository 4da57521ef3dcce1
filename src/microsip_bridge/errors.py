"""The error types that every layer raises: each says what went wrong and where."""

from __future__ import annotations

from pathlib import Path


class BridgeError(Exception):
    """A failure to report to the user in one line: what, and where (file, line or key).

    The CLI prints ``str(error)`` without a traceback (unless ``--debug``) and exits non-zero.
    """

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, where: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.where = where
        super().__init__(self.__str__())

    def __str__(self) -> str:
        place = ""
        if self.path is not None:
            place = str(self.path)
            if self.where:
                place += f", {self.where}"
        elif self.where:
            place = self.where
        return f"{place}: {self.message}" if place else self.message


class FileFormatError(BridgeError):
    """A file is damaged or not in the format we expected (an ini, Contacts.xml, CSV, vCard...)."""


class UnsafeInputError(BridgeError):
    """Input that could hurt us (entity expansion, a huge file, control characters) was refused."""


class TooLargeError(UnsafeInputError):
    """A file to read, or to write, is over a size limit (one the bridge would refuse to read)."""


class MicroSIPRunningError(BridgeError):
    """A write was refused because MicroSIP is running and would overwrite it (facts §3.2)."""

    exit_code = 3


class CommandError(BridgeError):
    """A MicroSIP command string could not be built: bad number, forbidden verb, wrong version."""


class NotFoundError(BridgeError):
    """A MicroSIP file or folder that was asked for does not exist."""

    exit_code = 4


class StoreUnavailableError(BridgeError):
    """The database did not answer (the server answers 503: asking again later may work)."""


class RefusedCommandError(CommandError):
    """A control command was refused before it was sent: bad input, or a command MicroSIP would
    misread (/reset, control characters, a second command hidden in an argument)."""

    exit_code = 2


class MicroSIPNotRunningError(BridgeError):
    """A control command cannot be sent: no running MicroSIP (or simulator) was found."""

    exit_code = 3


class CommandDroppedError(BridgeError):
    """MicroSIP answered 1 to a command: dropped (its SIP stack is not running) or not
    understood (facts §1.4)."""


class RateLimitedError(BridgeError):
    """Too many control commands in too short a time; ``retry_after`` says when to try again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DaemonNotRunningError(BridgeError):
    """A command needs the daemon (`microsip-bridge serve`), and none runs for this home."""

    exit_code = 3


class DirectoryUnavailableError(BridgeError):
    """The contacts directory cannot be served now (no ini known, Contacts.xml unreadable or in
    the middle of a write): MicroSIP then keeps the contacts it has and asks again later."""
