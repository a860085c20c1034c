"""A step allowed long to move data waits for a Docker engine that does not answer at all no longer than
the default step deadline (engine/saga.py EngineWait): a plan change or a restore otherwise kept the
database stopped for their 15 or 30 minutes. Other transient errors keep the step's own deadline."""

from __future__ import annotations

import asyncio

from engine.ports import EngineUnreachable, TransientError
from engine.saga import Coordinator, StepResult
from tests.unit.test_coordinator import an_operation_holding_its_addon, events  # noqa: F401 (a fixture)

DEFAULT_S, DATA_S = 0.2, 30.0


class MovesData:
    """One step with a long deadline of its own, failing with `error` until it has tried `until` times."""

    kind = "paint"
    deadlines = {"apply": DATA_S}

    def __init__(self, error: Exception, until: int = 10**9):
        self.error, self.until, self.attempts, self.compensated = error, until, 0, False

    async def run_step(self, step: str, operation) -> StepResult:
        self.attempts += 1
        await asyncio.sleep(0.01)
        if self.attempts < self.until:
            raise self.error
        return StepResult("moved")

    async def compensate(self, operation, error: str) -> StepResult:
        self.compensated = True
        return StepResult("undone")


async def test_a_step_stops_waiting_for_an_engine_that_does_not_answer_after_the_default_deadline(events):  # noqa: F811
    operation = await an_operation_holding_its_addon(events, steps=["apply"])
    saga = MovesData(EngineUnreachable("copying /data to host-d: the Docker engine does not answer"))
    coordinator = Coordinator(events, {saga.kind: saga}, DEFAULT_S, crash_at=None)

    await asyncio.wait_for(coordinator.submit(operation.id), DATA_S / 3)

    recorded = await events.get(operation.id)
    assert recorded.status == "failed" and saga.compensated
    assert "the Docker engine does not answer" in recorded.error


async def test_other_transient_errors_keep_the_step_s_own_deadline(events):  # noqa: F811
    operation = await an_operation_holding_its_addon(events, steps=["apply"])
    saga = MovesData(TransientError("the new node is loading its data"), until=6)  # ~0.4 s of retries, past DEFAULT_S
    coordinator = Coordinator(events, {saga.kind: saga}, DEFAULT_S, crash_at=None)

    await asyncio.wait_for(coordinator.submit(operation.id), DATA_S / 3)

    assert (await events.get(operation.id)).status == "succeeded"

