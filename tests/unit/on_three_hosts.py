"""What the unit tests of cluster sagas share: a world of three fake hosts with an engine on it, and
the crash points at each step boundary of an operation that succeeds."""

from __future__ import annotations

import pytest

from domain.operation import STEPS
from tests.unit.engine_fakes import THREE_HOSTS, World, shut_down, started_engine


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


@pytest.fixture
async def engine(world):
    return await started_engine(world)
