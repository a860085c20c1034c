"""An operation given up for its addon's removal stays abandoned, even when a compensation attempt
in flight ends after the removal was recorded."""

from __future__ import annotations

import asyncio
from uuid import UUID

from tests.unit.engine_fakes import APP, a_running_addon, caught_up, finished, started_engine


async def test_an_operation_given_up_for_the_addons_removal_stays_abandoned(world):
    engine = await started_engine(world, attention_retry_s=60)
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("start_node")  # neither the new node nor the old one starts: needs attention
    stuck = await engine.change_plan(APP, addon.name, "redis-starter-512")
    await until(lambda: any("Addon.NeedsAttention" in saved for saved in world.events.saves))
    await caught_up(engine)
    # An attempt of the compensation is under way (the operator retried it) as the addon is removed.
    attempt = world.runtime.gate("start_node", host="host-a")
    await engine.retry_operation(stuck["operation_id"])
    await until(lambda: len(world.runtime.calls_to("start_node", host="host-a")) == 2)
    world.events.when_saved("Addon.RemovalRequested", attempt.set)  # the attempt ends as the removal is recorded

    removal = await finished(engine, await engine.remove_addon(APP, addon.name))
    await asyncio.sleep(0.1)

    assert removal["status"] == "succeeded"
    assert (await world.operation(UUID(stuck["operation_id"]))).status == "abandoned"


async def until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.002)
