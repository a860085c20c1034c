"""What the unit tests of cluster sagas share: a world of three fake hosts with an engine on it, the
crash points at each step boundary of an operation that succeeds, and a crash at every call to a port."""

from __future__ import annotations

import itertools

import pytest

from domain.operation import STEPS
from tests.unit.engine_fakes import THREE_HOSTS, World, caught_up, restarted, settled, shut_down, started_engine
from tests.unit.fakes import Crash


def step_boundaries(kind: str) -> list[tuple[str, bool]]:
    """(the event whose save the crash hits, whether before it is written) at each step boundary."""
    points = [("Operation.Started", False)]
    for step in STEPS[kind]:
        points += [(f"Operation.StepSucceeded({step})", True), (f"Operation.StepSucceeded({step})", False)]
    return points


@pytest.fixture
async def world():
    world = World(hosts=THREE_HOSTS)
    yield world
    await shut_down(world)


# For a test that waits for a step failing for now to give up: the default (5 s) would be waited in full,
# while a step that works ends within milliseconds on these fakes, even on a loaded machine.
GIVES_UP_AFTER_S = 1.0


def giving_up_quickly(engine) -> None:
    """Steps give up after GIVES_UP_AFTER_S from now on: set once the addon a test starts from is made, so that
    its provisioning is not held to it on a loaded machine."""
    engine.coordinator.step_deadline_s = GIVES_UP_AFTER_S


@pytest.fixture
async def engine(world):
    return await started_engine(world)


async def crash_at_every_call(given, command, then) -> list[int]:
    """Between boundaries too: in a fresh world each time, `given` sets it up, then the engine dies at its Nth
    call to a port during `command`, for every N until `command` ends without meeting the crash; after each
    crash a restarted engine has finished what `command` started, as `then` checks. The calls crashed at."""
    crashed = []
    for number in itertools.count(1):
        world = World(hosts=THREE_HOSTS)
        try:
            engine = await started_engine(world)
            state = await given(world, engine)
            world.crash_switch.arm(number)
            try:
                await command(engine, state)
            except Crash:
                pass
            if world.crash_switch.armed:  # it ended before its Nth call: every call was tried
                return crashed
            crashed.append(number)
            engine = await restarted(world, engine)
            await settled(engine)
            await caught_up(engine)
            await then(world, engine, state)
        except AssertionError as failure:
            raise AssertionError(f"crash at call {number}: {failure}") from failure
        finally:
            await shut_down(world)
