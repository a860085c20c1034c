"""The event log of a store several processes share (engine/store.py, `shared`): its listeners are told of every
event in the log's order, once, from the log itself (tell_new), and a listener that fails stops neither the save
that told it nor any later one."""

from __future__ import annotations

from domain.app import App
from tests.unit.fakes import InMemoryEventLog


async def shared_log() -> InMemoryEventLog:
    events = InMemoryEventLog()
    events.shared = True  # as on PostgreSQL
    await events.open()
    return events


async def test_listeners_hear_every_event_once_in_order_and_a_failing_one_stops_no_save():
    events = await shared_log()
    heard: list[tuple[int, str]] = []

    def broken(position, event):
        raise RuntimeError("a listener's bug")

    events.on_saved(broken)
    events.on_saved(lambda position, event: heard.append((position, event.name)))
    for name in ("first", "second", "third"):
        await events.save(App(name=name, restart={"kind": "none"}))
    await events.tell_new()  # a poll finds nothing new: nothing told twice
    assert [name for _, name in heard] == ["first", "second", "third"]
    assert [position for position, _ in heard] == sorted({position for position, _ in heard})
    await events.shutdown()
