"""Between the step boundaries of a Business cluster's sagas (test_saga_cluster_crashes.py): the engine
dies as it makes its Nth call to Docker, Redis or the secret store (before that call has any effect),
for every N until the operation finishes without meeting the crash, and a new engine over the same
world finishes it, as the matrix of step boundaries expects (a Sentinel reset or an HAProxy reload
at most twice: once more when the crash cut its step short after it). A crash in the healer's round,
before the replacement was recorded, leaves it to the next round, which the new engine makes.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.unit.engine_fakes import APP, THREE_HOSTS, World, caught_up, restarted, settled, shut_down, started_engine
from tests.unit.test_saga_cluster_crashes import (ANY_STEP, GIVEN, GRACE_S, SCENARIOS, THEN, Scenario,
                                                  command_crashing, the_operation)


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name) for s in SCENARIOS
                                      if s.name != "replica replacement failing past rewiring"])
async def test_a_crash_at_any_call_to_a_port_and_a_restart_finish_the_cluster_operation(scenario):
    crashed = []
    for number in itertools.count(1):
        if not await crash_at_call(scenario, number):
            break
        crashed.append(number)
    assert len(crashed) >= 5, crashed


async def crash_at_call(scenario: Scenario, number: int) -> bool:
    """Whether the engine met the crash at its `number`-th call; if so, a restart has finished the operation."""
    world = World(hosts=THREE_HOSTS)
    try:
        engine = await started_engine(world, host_grace_s=GRACE_S)
        given = await GIVEN[scenario.kind](world, engine, scenario)
        world.crash_switch.arm(number)
        await command_crashing(engine, scenario)
        if world.crash_switch.armed:  # finished without meeting the crash: every call has been tried
            return False
        engine = await restarted(world, engine, host_grace_s=GRACE_S)
        await settled(engine)
        if not await recorded(engine, scenario):
            if scenario.kind == "provision_cluster":  # the crash came in the command: nothing was made
                assert world.runtime.containers() == [] and world.runtime.volumes() == []
                return True
            await caught_up(engine)
            await command_crashing(engine, scenario)  # the healer's next round
            await settled(engine)
        operation = await the_operation(world, engine, scenario, given)
        await THEN[scenario.name](world, engine, given, operation, ANY_STEP)
        return True
    except AssertionError as failure:
        raise AssertionError(f"crash at call {number}: {failure}") from failure
    finally:
        await shut_down(world)


async def recorded(engine, scenario: Scenario) -> bool:
    await caught_up(engine)
    rows = await asyncio.to_thread(engine.views.addons, APP)
    return any([o["kind"] == scenario.kind for row in rows for o in await engine.operations(row["name"])])
