"""A step's deadline holds when a library swallows a cancellation (engine/deadline.py).

Python 3.11's asyncio.wait_for loses a cancellation that arrives as the call it wraps completes, and
redis-py sends every command through it: with asyncio.timeout's single cancellation, a force-TLS
change whose port another process held retried past its 3 s deadline until the port was free (a
minute, in the suite). The step below is such a call: a command refused for now, whose first
cancellation is lost on the way."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.deadline import within
from engine.ports import TransientError
from engine.saga import Coordinator, StepResult
from tests.unit.test_coordinator import an_operation_holding_its_addon, events  # noqa: F401 (a fixture)

DEADLINE_S = 0.1
COMMAND_S = 0.5  # each attempt's command: the deadline falls within the first one
HANG_S = 30.0  # the operation a lost cancellation left running without a deadline that insists


class RefusedWhileAPortIsTaken:
    """Each attempt sends a command the server refuses for now (CONFIG SET port: the port is taken);
    the first cancellation that reaches it is lost, as in asyncio.wait_for on Python 3.11."""

    kind = "paint"

    def __init__(self, then_s: float = 0.0):
        self.attempts, self.lost, self.compensated = 0, 0, False
        self.then_s = then_s  # how long the attempt goes on after losing the cancellation
        self.stopped = asyncio.Event()

    async def run_step(self, step: str, operation) -> StepResult:
        self.attempts += 1
        try:
            try:
                await asyncio.sleep(COMMAND_S)
            except asyncio.CancelledError:
                if self.lost:
                    raise
                self.lost += 1  # swallowed: the call goes on as if nothing had been asked
            await asyncio.sleep(self.then_s)
        except asyncio.CancelledError:
            self.stopped.set()
            raise
        raise TransientError("CONFIG SET failed - Unable to listen on this port")

    async def compensate(self, operation, error: str) -> StepResult:
        self.compensated = True
        return StepResult("the port is closed again")


async def test_a_step_that_lost_its_cancellation_still_fails_at_its_deadline(events):  # noqa: F811
    operation = await an_operation_holding_its_addon(events, steps=["apply"])
    saga = RefusedWhileAPortIsTaken()
    coordinator = Coordinator(events, {saga.kind: saga}, DEADLINE_S, crash_at=None)

    started = time.monotonic()
    await asyncio.wait_for(coordinator.submit(operation.id), HANG_S)

    assert saga.lost == 1  # the library did lose one
    recorded = await events.get(operation.id)
    assert recorded.status == "failed" and saga.compensated
    assert recorded.error.startswith(f"apply: not done within its deadline of {DEADLINE_S:g} s (last error: "
                                     "CONFIG SET failed - Unable to listen on this port)")
    assert time.monotonic() - started < COMMAND_S * 4  # a few attempts at most, never until the port frees


async def test_an_engine_stopping_stops_a_step_that_lost_its_cancellation(events):  # noqa: F811
    operation = await an_operation_holding_its_addon(events, steps=["apply"])
    saga = RefusedWhileAPortIsTaken(then_s=HANG_S)  # would go on for HANG_S after the lost cancellation
    coordinator = Coordinator(events, {saga.kind: saga}, HANG_S, crash_at=None)
    coordinator.submit(operation.id)
    await asyncio.sleep(0.05)  # the step is running

    await asyncio.wait_for(coordinator.stop(), HANG_S / 2)

    assert saga.lost == 1 and saga.stopped.is_set()
    assert (await events.get(operation.id)).status == "running"  # it resumes at the next start


async def test_within_gives_the_works_result_or_its_error_or_times_out():
    async def answer():
        return 42

    async def refused():
        raise TransientError("refused")

    assert await within(1, answer()) == 42
    with pytest.raises(TransientError, match="refused"):
        await within(1, refused())
    with pytest.raises(TimeoutError, match="not done within 0.01 s"):
        await within(0.01, asyncio.sleep(5))
