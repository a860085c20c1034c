"""Fixtures of the engine's unit tests over the in-memory ports (tests/unit/engine_fakes.py)."""

from __future__ import annotations

import pytest

from tests.unit.engine_fakes import World, shut_down, started_engine


@pytest.fixture
async def world():
    """Docker hosts, Redis servers, the event store and the other ports, in memory; shut down after the test."""
    world = World()
    yield world
    await shut_down(world)


@pytest.fixture
async def engine(world):
    """A real Engine over the world, started."""
    return await started_engine(world)


@pytest.fixture
async def memory_log():
    """The event log in memory alone (tests/unit/fakes/event_log.py), opened; shut down after the test."""
    from tests.unit.fakes import InMemoryEventLog

    events = InMemoryEventLog()
    await events.open()
    yield events
    await events.shutdown()
