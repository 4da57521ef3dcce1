"""The event feed: each committed event as a message (the event and its call), fanned out live.

A message is the object `microsip-bridge events --format json` prints for the event, plus
``"call"``: the call as `calls --format json` prints it (``null`` when the event belongs to no
call). Live messages carry the call as the commit that stored the event left it; replayed ones
(:func:`replay_page`, read from the store) carry the call as the store holds it now.

:class:`EventHub` takes messages from the writer thread after each commit (never before: a
client must not see an event that is not durable), hands them to the event loop with
``call_soon_threadsafe`` and appends them to every subscriber's bounded queue. A subscriber whose
queue is full is ended (it fell behind), not waited for: one slow client never holds back the
others, nor grows the daemon's memory.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, EventRecord
from microsip_bridge.store.reader import call_dict, event_dict, json_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

logger = logging.getLogger("microsip_bridge.feed")

# A message as the feed moves it: its cursor and its JSON text (encoded once for every client).
Message = tuple[int, str]

# Messages a subscriber may have waiting: a burst of MicroSIP events is tens, a replay that
# runs while 4096 events arrive is a client that should reconnect instead.
QUEUE_SIZE = 4096
MAX_SUBSCRIBERS = 2048


def message_json(event: Mapping[str, object], call: Mapping[str, object] | None) -> str:
    """One message's text: ``event`` (an events row as the CLI's JSON has it) with ``"call"``."""
    return json_text({**event, "call": call})


def record_event_dict(
    rec: EventRecord, cursor: int, received_at: float, call_id: str | None
) -> dict[str, object]:
    """The event ``rec`` as the store will read it back (:func:`~.reader.event_dict`)."""
    values = (rec.uid, rec.event.value, rec.number, rec.ts, rec.pid, rec.source)
    return event_dict((cursor, *values, received_at, call_id))


def live_messages(
    committed: Sequence[tuple[EventRecord, int, str | None]],
    calls: Sequence[Call],
    received_at: float,
) -> list[Message]:
    """Messages for the events one transaction stored (``(record, cursor, call id)``, new ones
    only), each with its call among ``calls`` (the calls that transaction saved)."""
    by_id = {call.call_id: call for call in calls}
    encoded: dict[str, dict[str, object]] = {}
    out: list[Message] = []
    for rec, cursor, call_id in committed:
        call = None
        if call_id is not None and call_id in by_id:
            call = encoded.get(call_id)
            if call is None:
                call = encoded[call_id] = by_id[call_id].to_dict()
        out.append(
            (cursor, message_json(record_event_dict(rec, cursor, received_at, call_id), call))
        )
    return out


def replay_page(conn: Connection, after: int, limit: int) -> list[Message]:
    """Up to ``limit`` messages for the events after cursor ``after``, oldest first, read from
    the store (two queries: the events, then their calls)."""
    from sqlalchemy import select

    from microsip_bridge.store.reader import CALL_COLUMNS, EVENT_COLUMNS
    from microsip_bridge.store.schema import calls, events

    query = (
        select(*(events.c[name] for name in EVENT_COLUMNS))
        .where(events.c.cursor > after)
        .order_by(events.c.cursor)
        .limit(limit)
    )
    rows = [event_dict(tuple(row)) for row in conn.execute(query)]
    ids = sorted({str(row["call_id"]) for row in rows if row["call_id"] is not None})
    found: dict[str, dict[str, object]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(*(calls.c[name] for name in CALL_COLUMNS)).where(calls.c.call_id.in_(chunk))
        for row in conn.execute(query):
            call = call_dict(tuple(row))
            found[str(call["call_id"])] = call
    return [
        (
            cast(int, row["cursor"]),
            message_json(row, found.get(str(row["call_id"])) if row["call_id"] else None),
        )
        for row in rows
    ]


class FeedFull(BridgeError):
    """The daemon serves as many feed clients as it may."""


class Subscription:
    """One client's view of the feed: the messages published since it subscribed, in order,
    until it is ended (:attr:`end_code`, :attr:`end_reason`)."""

    def __init__(self, hub: EventHub, size: int) -> None:
        self._hub = hub
        self._size = size
        self._queue: collections.deque[Message] = collections.deque()
        self._ready = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_code: int | None = None
        self.end_reason = ""
        self.fell_behind = False

    def _put(self, messages: Sequence[Message]) -> None:
        if self.ended.is_set():
            return
        if len(self._queue) + len(messages) > self._size:
            # Dropped at once: a client that cannot keep up must not hold the daemon's memory.
            self._queue.clear()
            self.fell_behind = True
            self._end(4000, "fell behind")
            return
        self._queue.extend(messages)
        self._ready.set()

    def _end(self, code: int, reason: str) -> None:
        if self.end_code is None:
            self.end_code, self.end_reason = code, reason
        self.ended.set()
        self._ready.set()

    async def get(self) -> Message | None:
        """The next message; None once the subscription ended (see :attr:`end_code`)."""
        while True:
            if self.ended.is_set():
                return None
            if self._queue:
                return self._queue.popleft()
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Leave the feed (idempotent)."""
        self._hub._remove(self)


class EventHub:
    """Fans committed events out to subscribers on one event loop.

    :meth:`publish` may be called from any thread (the writer's); :meth:`subscribe`,
    :meth:`close` and the subscriptions belong to the loop given to :meth:`bind`. Before
    :meth:`bind` (the daemon starting: the spool ingested at start), nothing is published.
    :attr:`active` tells the writer whether anyone listens, so that it builds no message for
    nobody.

    **Usage**::

        hub = EventHub()
        hub.bind(asyncio.get_running_loop())      # in the app's lifespan
        sub = hub.subscribe()                     # then read the store, then sub.get()...
        hub.publish([(cursor, text)])             # the writer, after its commit
        hub.close()                               # every subscription ends (1001)
    """

    def __init__(
        self, *, queue_size: int = QUEUE_SIZE, max_subscribers: int = MAX_SUBSCRIBERS
    ) -> None:
        if queue_size < 1 or max_subscribers < 1:
            raise BridgeError("the feed's queue size and subscriber cap must be at least 1")
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()  # bind/close against publish from the writer
        self._count = 0  # read by the writer thread without the loop

    @property
    def active(self) -> bool:
        """Someone listens (read from any thread: a stale answer only costs a message built
        for nobody, or one skipped that a subscriber's replay reads from the store)."""
        return self._count > 0

    @property
    def subscribers(self) -> int:
        return self._count

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop

    def publish(self, messages: Sequence[Message]) -> None:
        """Hand committed messages (ascending cursors) to the loop; any thread, never blocks."""
        if not messages:
            return
        with self._lock:
            loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, messages)
        except RuntimeError:  # the loop closed: the daemon is stopping
            return

    def _fan_out(self, messages: Sequence[Message]) -> None:
        for sub in list(self._subscribers):
            sub._put(messages)

    def subscribe(self) -> Subscription:
        """A new subscription (on the loop); :class:`FeedFull` past the cap."""
        if self._loop is None:
            raise FeedFull("the daemon is not serving the feed (starting or stopping)")
        if len(self._subscribers) >= self.max_subscribers:
            raise FeedFull(f"the feed serves at most {self.max_subscribers} clients at once")
        sub = Subscription(self, self.queue_size)
        self._subscribers.add(sub)
        self._count = len(self._subscribers)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        self._count = len(self._subscribers)

    def close(self, reason: str = "the daemon is stopping") -> None:
        """End every subscription with 1001 (going away) and publish no more (on the loop).
        Idempotent."""
        with self._lock:
            self._loop = None
        for sub in list(self._subscribers):
            sub._end(1001, reason)

    async def wait_closed(self, timeout: float) -> bool:
        """After :meth:`close`: wait until every client has been told and left the feed
        (at most ``timeout`` seconds); whether they all did."""
        give_up = asyncio.get_running_loop().time() + timeout
        while self._subscribers:
            if asyncio.get_running_loop().time() >= give_up:
                return False
            await asyncio.sleep(0.01)
        return True
