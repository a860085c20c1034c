"""The follower applies a batch of events in one transaction of the read models (one commit, not one per
event: catching up 10,000 addons' history was ten times slower), and the read models find an addon's row
by its ID and a cluster's by its addon through an index (each event's update scanned the whole table)."""

from __future__ import annotations

import sqlite3

import pytest

from domain.app import App
from engine.follower import apply_batch
from projections import ReadModels, read_models
from tests.unit.fakes.event_log import InMemoryEventLog


async def recorded_apps(names: list[str]) -> list[tuple[int, object]]:
    events = InMemoryEventLog()
    await events.open()
    for name in names:
        await events.save(App(name=name, restart={"kind": "none"}))
    batch = await events.select(0, 100)
    await events.close()
    return batch


class Counting(ReadModels):
    """Counts the commits its connection makes."""

    def __init__(self):
        super().__init__()
        self.commits = 0
        self._db.set_trace_callback(lambda sql: setattr(self, "commits", self.commits + (sql == "COMMIT")))


class FailingAt(ReadModels):
    def __init__(self, failing: int):
        super().__init__()
        self.failing = failing

    def process(self, notification_id, event) -> None:
        if notification_id == self.failing:
            raise sqlite3.IntegrityError("UNIQUE constraint failed: addons.name")
        super().process(notification_id, event)


async def test_a_batch_is_applied_in_one_commit_and_moves_the_position_to_its_last_event():
    batch = await recorded_apps(["app-one", "app-two", "app-three"])
    views = Counting()
    apply_batch(views, batch)
    assert views.commits == 1 and views.position() == batch[-1][0]
    apply_batch(views, batch)  # applied already: nothing applied twice
    assert views.position() == batch[-1][0]


async def test_a_batch_overlapping_what_is_applied_applies_each_event_once_and_writes_the_position_once(monkeypatch):
    names = ["app-one", "app-two", "app-three", "app-four"]
    batch = await recorded_apps(names)
    applied = []
    monkeypatch.setattr(read_models, "HANDLERS", (lambda db, event: applied.append(event.name),))
    views, position_writes = ReadModels(), []
    views._db.set_trace_callback(lambda sql: position_writes.append(sql) if sql.startswith("INSERT INTO tracking") else None)
    apply_batch(views, batch[:2])
    apply_batch(views, batch)  # a start reading the log from before the read models' position
    assert applied == names and views.position() == batch[-1][0]
    assert len(position_writes) == 2  # one per batch, not one per event
    apply_batch(views, batch[:1])
    views.process(*batch[0])
    assert applied == names and len(position_writes) == 2


async def test_a_batch_with_an_event_that_fails_keeps_what_precedes_it_and_raises_its_error():
    batch = await recorded_apps(["app-one", "app-two", "app-three"])
    views = FailingAt(failing=batch[1][0])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint"):
        apply_batch(views, batch)
    assert views.position() == batch[0][0]


async def test_a_transaction_that_fails_rolls_back_every_event_in_it():
    batch = await recorded_apps(["app-one", "app-two"])
    views = ReadModels()
    with pytest.raises(RuntimeError):
        with views.transaction():
            views.process(*batch[0])
            raise RuntimeError("a later event failed")
    assert views.position() == 0


@pytest.mark.parametrize("statement, index", [
    ("UPDATE addons SET status = 'running' WHERE id = 'x'", "addons_by_id"),
    ("SELECT primary_node, degraded FROM clusters WHERE addon = 'x'", "clusters_by_addon"),
])
def test_the_rows_events_update_are_found_through_an_index(statement, index):
    views = ReadModels()
    plan = " ".join(r[-1] for r in views._db.execute(f"EXPLAIN QUERY PLAN {statement}"))
    assert f"USING INDEX {index}" in plan, plan
