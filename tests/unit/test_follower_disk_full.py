"""Read models that cannot write (their disk full): a command's wait for them ends with a clear error
naming why, not a bare timeout; they catch up on their own once they can write."""

from __future__ import annotations

import sqlite3

import pytest
from structlog.testing import capture_logs

from domain.app import App
from engine.follower import Follower, ReadModelsBehind
from projections import ReadModels
from tests.unit.fakes.event_log import InMemoryEventLog


class FullDisk(ReadModels):
    full = True

    def process(self, notification_id, event) -> None:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        super().process(notification_id, event)


async def test_a_wait_for_read_models_that_cannot_write_names_why_and_they_catch_up_later():
    events, views = InMemoryEventLog(), FullDisk()
    await events.open()
    follower = Follower(events, views, poll_s=0.02)
    follower.start()
    try:
        [recorded] = await events.save(App(name="my-app", restart={"kind": "none"}))
        position = recorded.notification.id
        with pytest.raises(ReadModelsBehind, match=r"recorded, but .* \(database or disk is full\)"):
            await follower.wait_until(position, timeout=0.3)
        views.full = False
        await follower.wait_until(position, timeout=5)
        assert views.position() == position and follower.failing is None
    finally:
        await follower.stop()
        await events.close()


class Poisoned(ReadModels):
    """A projection that cannot apply an event (a bug, or an event breaking a UNIQUE constraint)."""

    def process(self, notification_id, event) -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed: addons.name")


async def test_an_event_a_projection_cannot_apply_is_no_disk_fault_and_is_logged_once():
    """It was told as "recorded, but the read models cannot be updated now ... it shows once they can write
    again", which it never does, and logged with its traceback at each poll (every 0.5 s)."""
    events, views = InMemoryEventLog(), Poisoned()
    await events.open()
    follower = Follower(events, views, poll_s=0.01)
    with capture_logs() as logged:
        follower.start()
        try:
            [recorded] = await events.save(App(name="my-app", restart={"kind": "none"}))
            with pytest.raises(TimeoutError):
                await follower.wait_until(recorded.notification.id, timeout=0.3)
            assert follower.failing is None
        finally:
            await follower.stop()
            await events.close()
    failures = [entry for entry in logged if entry["event"] == "read model update failed; retrying"]
    assert len(failures) == 1 and "UNIQUE constraint failed" in failures[0]["error"], failures
