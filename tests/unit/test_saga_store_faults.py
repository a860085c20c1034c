"""The coordinator over an event store that fails for a moment (engine/saga.py, engine/store.py): a read
that fails right after a refused write is waited for like the write (it ended the operation's task with an
unlogged error, the operation left running until the next start); a host back while a compensation fails
lets it try again at once (the wake came before the wait began and was lost: it waited up to 10 minutes);
only a full or read-only store is said to need room on its disk."""

from __future__ import annotations

import asyncio

import pytest
from eventsourcing.persistence import OperationalError

from engine import saga as saga_module
from engine.store import EventStoreUnavailable
from tests.unit.fakes import InMemoryEventLog
from tests.unit.test_coordinator import Painting, a_coordinator, an_operation_holding_its_addon, run


class FailingStore(InMemoryEventLog):
    """The store's next calls (reads or writes, in order) fail with these SQLite errors (None: that one works)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[str | None] = []

    async def _run(self, fn, *args):
        if self.failures and (failure := self.failures.pop(0)) is not None:
            raise OperationalError(failure)
        return await super()._run(fn, *args)


@pytest.fixture
async def store():
    log = FailingStore()
    await log.open()
    yield log
    await log.shutdown()


class FailsTheStoreAfterPaint(Painting):
    async def run_step(self, step, operation):
        result = await super().run_step(step, operation)
        if step == "paint" and not self.failed_once:
            self.failed_once = True  # read the operation (fine), write its step (full), read it again (I/O)
            self.events.failures[:] = [None, "database or disk is full", "disk I/O error"]
        return result

    failed_once = False


async def test_a_read_failing_after_a_refused_write_is_waited_for_too(store, monkeypatch):
    monkeypatch.setattr(saga_module, "STORE_RETRY_S", 0.01)
    operation = await an_operation_holding_its_addon(store)
    saga = FailsTheStoreAfterPaint(store)
    await run(a_coordinator(store, saga), operation.id, timeout=5)

    assert (await store.get(operation.id)).status == "succeeded"
    assert saga.runs["paint"] == 2  # run again from what was recorded (steps are idempotent)


class HostBackDuringTheAttempt(Painting):
    coordinator = None

    async def compensate(self, operation, error):
        if not self.compensation_times:
            self.coordinator.retry_stuck()  # the watcher sees the host answer again while this attempt fails
        return await super().compensate(operation, error)


async def test_a_host_back_while_a_compensation_fails_lets_it_try_again_at_once(store):
    operation = await an_operation_holding_its_addon(store)
    saga = HostBackDuringTheAttempt(store)
    saga.fail_for_good("run_step", step="paint")
    saga.fail_for_good("compensate", times=1)
    saga.coordinator = coordinator = a_coordinator(store, saga, attention_retry_s=600)

    await run(coordinator, operation.id, timeout=5)

    assert (await store.get(operation.id)).status == "failed" and len(saga.compensation_times) == 2


@pytest.mark.parametrize("error, hint", [
    ("database or disk is full", "once its disk has room (or is writable) again"),
    ("attempt to write a readonly database", "once its disk has room (or is writable) again"),
    ("database is locked", "the engine's log says more"),
    ("disk I/O error", "the engine's log says more"),
    ("no such table: stored_events", "the engine's log says more"),
])
async def test_only_a_full_or_read_only_store_is_said_to_need_room(store, error, hint):
    operation = await an_operation_holding_its_addon(store)
    store.failures.append(error)
    with pytest.raises(EventStoreUnavailable) as refused:
        await store.save(operation)
    assert str(refused.value).startswith(f"the event store cannot record anything now ({error}): nothing was changed")
    assert str(refused.value).endswith(hint)
    assert ("room" in str(refused.value)) == ("once its disk" in hint)
