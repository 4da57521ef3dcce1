"""The event feed without a server: the hub's fan-out, bounds and stop; publication after the
commit only, the sweep's events too; cursors that never go back, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine

from microsip_bridge.calls.feed import EventHub, FeedFull, Message, replay_page
from microsip_bridge.calls.recorder import Recorder
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Event
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.schema import events
from tests.test_store import T0, db, fresh, pg_admin, rec  # noqa: F401 - fixtures

T = TypeVar("T")

# -- the hub -----------------------------------------------------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def msgs(*cursors: int) -> list[Message]:
    return [(c, json.dumps({"cursor": c})) for c in cursors]


def test_every_subscriber_gets_every_message_in_order_from_another_thread() -> None:
    async def main() -> list[list[int]]:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        subs = [hub.subscribe() for _ in range(3)]
        assert hub.active and hub.subscribers == 3

        def writer() -> None:
            for start in range(0, 300, 10):
                hub.publish(msgs(*range(start + 1, start + 11)))

        thread = threading.Thread(target=writer)
        thread.start()
        got: list[list[int]] = []
        for sub in subs:
            seen = []
            while len(seen) < 300:
                message = await asyncio.wait_for(sub.get(), 10)
                assert message is not None
                seen.append(message[0])
            got.append(seen)
        thread.join()
        for sub in subs:
            sub.close()
        assert not hub.active
        return got

    assert run(main) == [list(range(1, 301))] * 3


def test_a_full_queue_ends_that_subscriber_only_and_frees_its_messages() -> None:
    async def main() -> None:
        hub = EventHub(queue_size=5)
        hub.bind(asyncio.get_running_loop())
        slow, fast = hub.subscribe(), hub.subscribe()
        for c in range(1, 7):
            hub.publish(msgs(c))
            await asyncio.sleep(0)
            while fast._queue:
                assert (await fast.get()) is not None
        assert slow.ended.is_set() and slow.end_code == 4000 and slow.fell_behind
        assert slow.end_reason == "fell behind"
        assert not slow._queue and await slow.get() is None
        assert not fast.ended.is_set()

    run(main)


def test_a_group_bigger_than_the_queue_overflows_at_once() -> None:
    async def main() -> None:
        hub = EventHub(queue_size=3)
        hub.bind(asyncio.get_running_loop())
        sub = hub.subscribe()
        hub.publish(msgs(1, 2, 3, 4))
        await asyncio.sleep(0.01)
        assert sub.end_code == 4000

    run(main)


def test_the_cap_and_a_hub_not_serving_refuse_subscribers() -> None:
    async def main() -> None:
        hub = EventHub(max_subscribers=2)
        with pytest.raises(FeedFull, match="not serving"):
            hub.subscribe()
        hub.bind(asyncio.get_running_loop())
        first = hub.subscribe()
        hub.subscribe()
        with pytest.raises(FeedFull, match="at most 2 clients"):
            hub.subscribe()
        first.close()
        first.close()  # idempotent
        hub.subscribe()

    run(main)
    with pytest.raises(BridgeError):
        EventHub(queue_size=0)


def test_close_ends_every_subscription_with_1001_and_publishes_no_more() -> None:
    async def main() -> None:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        subs = [hub.subscribe() for _ in range(2)]
        hub.close()
        hub.publish(msgs(1))  # after close: dropped, no error
        await asyncio.sleep(0.01)
        for sub in subs:
            assert await sub.get() is None
            assert (sub.end_code, sub.end_reason) == (1001, "the daemon is stopping")
        assert not await hub.wait_closed(0.05)  # the clients have not left yet
        for sub in subs:
            sub.close()
        assert await hub.wait_closed(1.0)
        with pytest.raises(FeedFull):
            hub.subscribe()

    run(main)


def test_publishing_before_the_loop_is_bound_drops_the_messages() -> None:
    hub = EventHub()
    hub.publish(msgs(1))  # the daemon starting: nobody can listen yet
    assert not hub.active


# -- publication by the recorder: after the commit -----------------------------------------------


class Spy:
    """A feed that records what the writer publishes, and whether it was durable by then."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.active = True
        self.published: list[Message] = []
        self.durable: list[bool] = []

    def publish(self, messages: list[Message]) -> None:
        self.published += messages
        with self.engine.connect() as conn:
            stored = {e.cursor for e in repo.events_after(conn, 0, 10_000)}
        self.durable += [cursor in stored for cursor, _ in messages]


def make_recorder(engine: Engine, spy: Spy) -> Recorder:
    recorder = Recorder(
        engine,
        CallTracker(),
        clock=lambda: T0 + 100,
        feed=spy,  # type: ignore[arg-type]
    )
    recorder.load()
    return recorder


def test_the_recorder_publishes_new_events_once_committed_with_their_call(
    db: Engine,  # noqa: F811
) -> None:
    spy = Spy(db)
    recorder = make_recorder(db, spy)
    first, second = rec("a", Event.INCOMING), rec("b", Event.RING, ts=T0 + 1)
    recorder.write([first, second])
    recorder.write([first])  # a duplicate: nothing new to publish
    assert len(spy.published) == 2 and all(spy.durable)
    with db.connect() as conn:
        replayed = replay_page(conn, 0, 10)
    assert [c for c, _ in spy.published] == [c for c, _ in replayed]
    live = [json.loads(t) for _, t in spy.published]
    again = [json.loads(t) for _, t in replayed]
    # The events are the same; the call is as each commit left it (both events: one commit).
    assert [{k: v for k, v in m.items() if k != "call"} for m in live] == [
        {k: v for k, v in m.items() if k != "call"} for m in again
    ]
    assert live[1]["call"] == again[1]["call"] and live[1]["call"]["rang"] is True


def test_a_failed_commit_publishes_nothing(db: Engine) -> None:  # noqa: F811
    spy = Spy(db)
    recorder = make_recorder(db, spy)

    def failing() -> None:
        with recorder.transaction() as conn:
            repo.record_event(conn, rec("lost"))
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        failing()
    recorder.write([rec("kept")])
    numbers = [json.loads(t)["uid"] for _, t in spy.published]
    assert numbers == ["kept"]


def test_events_that_other_transactions_add_are_published_too(db: Engine) -> None:  # noqa: F811
    # The sweep records the calls it imports from [Calls] with an event of their own.
    spy = Spy(db)
    recorder = make_recorder(db, spy)
    recorder.write([rec("hook-1")])
    with recorder.transaction() as conn:
        repo.record_event(conn, rec("sweep-1", Event.END, source="sweep"))
    recorder.write([rec("hook-2", ts=T0 + 50)])
    uids = [json.loads(t)["uid"] for _, t in spy.published]
    assert uids == ["hook-1", "sweep-1", "hook-2"]
    cursors = [c for c, _ in spy.published]
    assert cursors == sorted(set(cursors)) and all(spy.durable)


def test_nobody_listening_builds_no_message(db: Engine) -> None:  # noqa: F811
    spy = Spy(db)
    spy.active = False
    recorder = make_recorder(db, spy)
    recorder.write([rec("a")])
    with recorder.transaction() as conn:
        repo.record_event(conn, rec("b", source="sweep"))
    spy.active = True
    recorder.write([rec("c", ts=T0 + 50)])
    # Only what was committed while someone listened; a subscriber reads the rest from the
    # store after subscribing.
    assert [json.loads(t)["uid"] for _, t in spy.published] == ["c"]


# -- cursors never go back -----------------------------------------------------------------------


def test_cursors_are_never_reused_after_deletes_and_restarts(
    fresh: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    upgrade(fresh)
    url = fresh.url.render_as_string(hide_password=False)
    with fresh.begin() as conn:
        seen = [repo.record_event(conn, rec(f"e{i}"))[0] for i in range(5)]
        # Whoever prunes the log (by hand, a future retention job) deletes the newest rows too.
        conn.execute(delete(events).where(events.c.cursor >= seen[3]))
    with fresh.connect() as conn:
        repo.record_event(conn, rec("rolled-back"))
        conn.rollback()
    fresh.dispose()  # the daemon restarts: a new engine, new connections
    again = make_engine(url, tmp_path)
    try:
        upgrade(again)
        with again.begin() as conn:
            after = repo.record_event(conn, rec("after-restart"))[0]
            assert repo.max_cursor(conn) == after
    finally:
        again.dispose()
    assert after > max(seen)


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_sqlite_keeps_autoincrement_so_the_counter_survives(fresh: Engine) -> None:  # noqa: F811
    upgrade(fresh)
    with fresh.connect() as conn:
        ddl = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
        ).scalar_one()
    assert "AUTOINCREMENT" in ddl.upper()
