"""Leases for several engine processes on one event store (domain/lease.py, engine/leases.py, engine/takeover.py),
over the real event log in memory: two processes are two EventLeases (two holders) and two
coordinators on one log, with a clock the test moves. Taking, renewing, expiry, fencing a driver that lost its
lease, and a takeover that finishes an operation once."""

from __future__ import annotations

import asyncio

import pytest

from domain.lease import Lease, LeaseHeld, LeaseLost, operation_lease
from domain.operation import Operation
from engine.inventory import Inventory
from engine.leases import EventLeases, SoleLeases
from engine.saga import Coordinator, StepResult
from engine.store import EventStoreUnavailable
from engine.takeover import Takeover
from tests.unit.fakes import InMemoryEventLog

LEASE_S = 15.0


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FlakyLog(InMemoryEventLog):
    """The log, whose saves can be refused as a store that went away refuses them."""

    fail_saves = False
    fail_reads = False

    async def get(self, aggregate_id, version=None):
        if self.fail_reads:
            raise EventStoreUnavailable("the event store cannot read anything now (connection refused)")
        return await super().get(aggregate_id, version)

    async def save(self, *aggregates) -> list:
        if self.fail_saves:
            for aggregate in aggregates:
                aggregate.collect_events()  # as eventsourcing does before a save that then fails
            raise EventStoreUnavailable("the event store cannot record anything now (connection refused)")
        return await super().save(*aggregates)


@pytest.fixture
async def log():
    events = FlakyLog()
    await events.open()
    yield events
    await events.shutdown()


def two_processes(log, clock):
    return EventLeases(log, "process-a", LEASE_S, clock), EventLeases(log, "process-b", LEASE_S, clock)


def lease_events(log) -> list[str]:
    return [saved for save in log.saves for saved in save if saved.startswith("Lease.")]


# -- the aggregate -------------------------------------------------------------------------------------------------

def test_a_lease_is_free_once_its_time_has_passed_or_for_its_own_holder():
    lease = Lease(name="operation:x", holder="a", until=100.0)
    assert lease.is_free_for("a", 50.0) and not lease.is_free_for("b", 99.9) and lease.is_free_for("b", 100.0)
    with pytest.raises(LeaseHeld, match=r"held by a for 10\.0 s more"):
        lease.take("b", 90.0, 105.0)
    lease.take("b", 100.0, 115.0)
    assert (lease.holder, lease.until) == ("b", 115.0)
    with pytest.raises(LeaseLost, match="held by b"):
        lease.renew("a", 130.0)
    lease.renew("b", 130.0)
    assert lease.until == 130.0


# -- taking, renewing, expiry ----------------------------------------------------------------------------------------

async def test_one_of_two_processes_takes_a_lease_and_the_other_only_once_it_expired(log):
    clock = Clock()
    a, b = two_processes(log, clock)
    assert await a.take("x") and a.holds("x")
    assert not await b.take("x") and not b.holds("x")
    assert b.seen("x") == ("process-a", clock.now + LEASE_S)  # what the log told b
    clock.now += LEASE_S - 0.1
    assert not await b.take("x")
    clock.now += 0.1
    assert await b.take("x") and b.holds("x")
    assert a.seen("x")[0] == "process-b"


async def test_two_processes_taking_a_free_lease_at_once_get_it_once(log):
    a, b = two_processes(log, Clock())
    assert sorted(await asyncio.gather(a.take("x"), b.take("x"))) == [False, True]
    assert lease_events(log) == ["Lease.Taken"]


async def test_a_renewed_lease_is_not_taken_and_a_restarted_holder_takes_its_own_at_once(log):
    clock = Clock()
    a, b = two_processes(log, clock)
    await a.take("x")
    for _ in range(4):  # four renewal periods: past the first lease's end
        clock.now += a.renew_s
        assert await a.renew("x")
    assert not await b.take("x")
    assert b.seen("x")[1] == clock.now + LEASE_S
    again = EventLeases(log, "process-a", LEASE_S, clock)  # process-a restarted under its identity
    assert await again.take("x")
    assert lease_events(log) == ["Lease.Taken"] + ["Lease.Renewed"] * 4 + ["Lease.TakenOver"]


async def test_a_holder_that_cannot_renew_lets_go_before_another_may_take(log):
    clock = Clock()
    a, b = two_processes(log, clock)
    lost = []
    await a.take("x", on_lost=lambda: lost.append("x"))
    log.fail_saves = True
    clock.now += a.renew_s
    assert not await a.renew("x") and a.holds("x") and not lost  # one failure: still well within the lease
    clock.now += a.renew_s
    assert not await a.renew("x")
    assert lost == ["x"] and not a.holds("x")  # stopped one renewal period before its end
    log.fail_saves = False
    assert not await b.take("x")  # not yet: it ends in one renewal period
    clock.now += a.renew_s
    assert await b.take("x")


async def test_a_lease_that_cannot_be_read_is_not_taken_and_is_taken_once_the_store_answers(log):
    clock = Clock()
    a, b = two_processes(log, clock)
    await a.take("x")
    a.drop("x")
    clock.now += LEASE_S
    log.fail_reads = True
    assert not await b.take("x")  # answered, not raised: the sweep or the step tries again
    log.fail_reads = False
    assert await b.take("x") and b.holds("x")


# -- fencing ----------------------------------------------------------------------------------------------------------

async def a_backup_operation(log) -> Operation:
    operation = Operation(kind="backup", addon="my-app-1234", app="my-app")
    await log.save(operation)
    return operation


async def test_a_driver_whose_lease_ran_out_records_nothing_more_and_is_told_it_lost_it(log):
    clock = Clock()
    a, b = two_processes(log, clock)
    operation = await a_backup_operation(log)
    name, lost = operation_lease(operation.id), []
    await a.take(name, on_lost=lambda: lost.append(name))
    stale = await log.get(operation.id)
    stale.start_step("save")
    clock.now += LEASE_S  # a stalled for a whole lease (a long pause): b takes the operation over
    assert await b.take(name)
    with pytest.raises(LeaseLost):
        await a.fenced(log).save(stale)
    assert lost == [name] and (await log.get(operation.id)).steps[0]["status"] == "pending"


async def test_a_driver_whose_clock_lags_is_fenced_by_the_store_itself(log):
    a_clock, b_clock = Clock(), Clock()
    a, b = EventLeases(log, "process-a", LEASE_S, a_clock), EventLeases(log, "process-b", LEASE_S, b_clock)
    operation = await a_backup_operation(log)
    name = operation_lease(operation.id)
    await a.take(name)
    stale = await log.get(operation.id)
    stale.start_step("save")
    b_clock.now += LEASE_S  # by b's clock the lease is over; by a's it is not
    assert await b.take(name) and a.holds(name)
    with pytest.raises(LeaseLost, match="taken by process-b"):
        await a.fenced(log).save(stale)  # its renewal, saved with the step, meets b's newer lease
    assert (await log.get(operation.id)).steps[0]["status"] == "pending" and not a.holds(name)
    fresh = await log.get(operation.id)
    fresh.start_step("save")
    await b.fenced(log).save(fresh)  # b's save carries a renewal of b's lease
    assert (await log.get(operation.id)).steps[0]["status"] == "running"
    assert (await log.get(Lease.id_for(name))).holder == "process-b"


# -- two coordinators on one log ----------------------------------------------------------------------------------------

class Backing:
    """A saga whose `archive` step waits until the test lets it go (the driving process frozen there)."""

    kind = "backup"

    def __init__(self):
        self.runs: list[tuple[str, str]] = []
        self.release = asyncio.Event()
        self.who = ""

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        self.runs.append((self.who, step))
        if step == "archive" and self.who == "a":
            await self.release.wait()
        return StepResult(f"{step} done")

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        return StepResult("compensated")


class Named(Backing):
    def __init__(self, shared: Backing, who: str):
        self.__dict__ = shared.__dict__.copy()
        self.shared, self.who = shared, who

    async def run_step(self, step, operation):
        self.shared.who = self.who
        return await Backing.run_step(self.shared, step, operation)


async def test_another_process_takes_over_an_operation_whose_driver_stalled_and_the_stalled_one_is_fenced(log):
    clock = Clock()
    a_leases, b_leases = two_processes(log, clock)
    saga = Backing()
    a = Coordinator(log, {"backup": Named(saga, "a")}, 5.0, None, leases=a_leases)
    b = Coordinator(log, {"backup": Named(saga, "b")}, 5.0, None, leases=b_leases)
    inventory = Inventory()
    log.on_saved(inventory.apply_at)
    takeover = Takeover(log, b_leases, inventory, b, clock)
    operation = Operation(kind="backup", addon="my-app-1234", app="my-app")
    await log.save(operation)
    driving = a.submit(operation.id)
    while ("a", "archive") not in saga.runs:
        await asyncio.sleep(0)
    assert takeover.sweep() == []  # a's lease is live: b leaves it alone
    clock.now += LEASE_S  # a frozen in its step for a whole lease, its renewals not running
    assert takeover.sweep() == [operation.id]
    await asyncio.wait_for(b.submit(operation.id), 5)
    assert (await log.get(operation.id)).status == "succeeded"
    saga.release.set()  # a wakes up: its record of the step is refused, and it stops
    await asyncio.wait_for(driving, 5)
    finished = await log.get(operation.id)
    assert finished.status == "succeeded" and [s["status"] for s in finished.steps] == ["succeeded"] * 3
    ends = [e for save in log.saves for e in save if e.startswith("Operation.Succeeded")]
    assert ends == ["Operation.Succeeded"]
    assert saga.runs == [("a", "save"), ("a", "archive"), ("b", "archive"), ("b", "record")]
    assert not a.is_driving(operation.id) and operation.id not in inventory.unfinished


async def test_an_operation_recorded_by_a_process_that_died_before_taking_its_lease_is_taken_after_a_lease(log):
    clock = Clock()
    b_leases = EventLeases(log, "process-b", LEASE_S, clock)
    saga = Backing()
    b = Coordinator(log, {"backup": Named(saga, "b")}, 5.0, None, leases=b_leases)
    inventory = Inventory()
    log.on_saved(inventory.apply_at)
    takeover = Takeover(log, b_leases, inventory, b, clock)
    operation = Operation(kind="backup", addon="my-app-1234", app="my-app")
    await log.save(operation)  # process a recorded it and died at once: no lease in the log
    assert takeover.sweep() == []
    clock.now += LEASE_S
    assert takeover.sweep() == [operation.id]
    await asyncio.wait_for(b.submit(operation.id), 5)
    assert (await log.get(operation.id)).status == "succeeded"


async def test_alone_on_its_store_a_coordinator_records_no_lease():
    log = InMemoryEventLog()
    await log.open()
    coordinator = Coordinator(log, {"backup": Backing()}, 5.0, None)
    assert isinstance(coordinator.leases, SoleLeases)
    operation = Operation(kind="backup", addon="my-app-1234", app="my-app")
    await log.save(operation)
    await asyncio.wait_for(coordinator.submit(operation.id), 5)
    assert (await log.get(operation.id)).status == "succeeded" and lease_events(log) == []
    await log.shutdown()
