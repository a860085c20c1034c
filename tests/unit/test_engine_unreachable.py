"""A step allowed long to move data waits for a Docker engine that does not answer at all no longer than
the default step deadline (engine/saga.py EngineWait): a plan change or a restore otherwise kept the
database stopped for their 15 or 30 minutes. Other transient errors keep the step's own deadline."""

from __future__ import annotations

import asyncio

from engine.ports import EngineUnreachable, TransientError
from engine.saga import Coordinator, StepResult
from tests.unit.engine_fakes import APP, started_engine
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



async def test_an_undo_that_waits_for_a_host_s_engine_runs_as_soon_as_the_watcher_sees_it_back(world):
    """The wait before a stuck compensation's next attempt grows to 10 minutes; the watcher seeing the
    host answer again wakes it at once (here the wait is 10 minutes from the first attempt)."""
    engine = await started_engine(world, attention_retry_s=600)
    creating = world.runtime.gate("start_node")
    started = await engine.add_addon(APP, "redis-starter-256")
    await asyncio.sleep(0.05)  # the container is made, its start waits at the gate
    host = next(iter(world.runtime.calls_to("start_node")))["host"]
    await engine.watcher.look()  # the host answers: seen so
    world.runtime.lose_host(host)
    creating.set()
    async with asyncio.timeout(5):
        while (await engine.wait_for_operation(started["operation_id"], timeout=0))["status"] != "needs-attention":
            await asyncio.sleep(0.01)
    await engine.watcher.look()  # the host is silent: its node is not the watcher's (the addon is held)

    world.runtime.hosts[host].answers = True
    await engine.watcher.look()

    operation = await engine.wait_for_operation(started["operation_id"], timeout=5)
    assert operation["status"] == "failed", operation
    assert world.runtime.containers() == []
