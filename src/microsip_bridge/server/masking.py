"""Numbers masked in the daemon's log: one formatter on its handlers, so no log call can forget.

Masking at the call sites would need every present and future ``logger.info(..., number)`` to
remember it (and the exceptions whose text holds a number, and the libraries' messages); the
handlers' formatter sees every line as text, whoever logged it. The time stamp, level and
logger name are left alone: only the message, the traceback and the stack are masked.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TypeAlias

from microsip_bridge.wire import mask_number

_ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)


class MaskingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose lines have every number masked by
    :func:`~microsip_bridge.wire.mask_number`. The record itself is left as it was."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        original = record.message
        record.message = mask_number(original)
        try:
            return super().formatMessage(record)
        finally:
            record.message = original

    def formatException(self, ei: _ExcInfo) -> str:
        return mask_number(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return mask_number(super().formatStack(stack_info))
