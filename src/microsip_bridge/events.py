"""The eight call events MicroSIP reports (facts §2.1, §2.2), as the ``Event`` enum.

The names themselves are declared once, in :data:`microsip_bridge.hook.EVENT_NAMES`: the hook
must not pay for importing :mod:`enum` (about 5 ms, a third of its budget), so it works with the
plain names, and this enum is built on them. ``microsip_bridge.hook.Event`` is this class.
"""

from __future__ import annotations

import enum

from microsip_bridge.hook import EVENT_NAMES


class Event(enum.StrEnum):
    """The call events MicroSIP can report, one per ``cmd*`` key (facts §2.1, §2.2)."""

    OUTGOING = EVENT_NAMES[0]
    INCOMING = EVENT_NAMES[1]
    RING = EVENT_NAMES[2]
    ANSWER = EVENT_NAMES[3]
    ANSWER_VIDEO = EVENT_NAMES[4]
    START = EVENT_NAMES[5]
    BUSY = EVENT_NAMES[6]
    END = EVENT_NAMES[7]


if tuple(e.value for e in Event) != EVENT_NAMES:  # pragma: no cover - a guard for editors
    raise ImportError("microsip_bridge.events.Event does not list hook.EVENT_NAMES in order")
