"""A driver stopped by its own clock before its lease may be taken over, not at its next save only
(engine/leases.py, EventLeases._watch); and a lease let go while its renewal was in flight stays let go.

Real event loop time here (the watchdog is a timer of the loop): a lease of 3 s, so the driver is stopped at
2 s, one renewal period before anyone may take its operation over."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.lease import Lease, operation_lease
from domain.operation import Operation
from engine.leases import EventLeases
from engine.saga import Coordinator, StepResult
from tests.unit.fakes import InMemoryEventLog

LEASE_S = 3.0


class GatedLog(InMemoryEventLog):
    """The log, whose saves can be held (a store that does not answer yet) until the test opens the gate."""

    gate: asyncio.Event | None = None

    async def save(self, *aggregates) -> list:
        if self.gate is not None:
            await self.gate.wait()
        return await super().save(*aggregates)


@pytest.fixture
async def log():
    events = GatedLog()
    await events.open()
    yield events
    await events.shutdown()


class StalledStep:
    """A backup whose `archive` step stalls (its process starved, its renewals not running) for two leases,
    then makes its effect (as a container created, a file written)."""

    kind = "backup"

    def __init__(self):
        self.effects: list[str] = []
        self.stalled = asyncio.Event()

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        if step == "archive":
            self.stalled.set()
            await asyncio.sleep(2 * LEASE_S)
        self.effects.append(step)
        return StepResult(f"{step} done")

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        return StepResult("compensated")


async def test_a_driver_not_renewed_in_time_is_stopped_within_its_step_before_another_may_take_over(log):
    a = EventLeases(log, "process-a", LEASE_S)
    saga = StalledStep()
    coordinator = Coordinator(log, {"backup": saga}, 30.0, None, leases=a)  # a's renewals never started
    operation = Operation(kind="backup", addon="my-app-1234", app="my-app")
    await log.save(operation)
    driving = coordinator.submit(operation.id)
    await asyncio.wait_for(saga.stalled.wait(), 5)
    await asyncio.wait([driving], timeout=2 * LEASE_S + 1)
    stopped_at = time.time()
    lease_ends = (await log.get(Lease.id_for(operation_lease(operation.id)))).until
    assert driving.done() and driving.cancelled(), "the stalled driver went on past its lease"
    assert saga.effects == ["save"]  # the archive's effect never made by the driver that lost its lease
    assert stopped_at < lease_ends  # stopped before its lease ended: nobody could have taken it over yet
    assert not a.holds(operation_lease(operation.id))


async def test_a_lease_dropped_while_its_renewal_is_in_flight_is_not_renewed_again(log):
    a = EventLeases(log, "process-a", LEASE_S)
    assert await a.take("operation:x")
    log.gate = asyncio.Event()
    renewing = asyncio.create_task(a.renew("operation:x"))  # the store slow to answer
    await asyncio.sleep(0.01)
    a.drop("operation:x")  # its driver ended meanwhile (the addon removed, or the operation interrupted)
    log.gate.set()
    assert await renewing  # the renewal itself landed
    assert not a.holds("operation:x")  # but nobody here drives it: not renewed for ever by the renewal loop
    a.drop("operation:x")
