"""Waiting for an operation this process no longer drives (its saga's task ended with the operation
unfinished: the engine died there, or the task met an error it leaves for the next start) polls the
event log. It waited on the ended task, which answers at once, and so read the log in a tight loop
for the whole wait: a core, and the event store's one thread, taken from every other operation."""

from __future__ import annotations

from uuid import UUID

from tests.unit.engine_fakes import APP


async def test_a_wait_for_an_operation_whose_saga_ended_unfinished_polls_the_log(world, engine):
    world.events.crash_on("Operation.StepSucceeded(create)", before=True)  # the saga's task ends there
    started = await engine.add_addon(APP, "redis-starter-256")
    await engine.coordinator.wait(UUID(started["operation_id"]), timeout=5)
    assert not world.events.crash_armed, "the saga did not reach its crash"

    reads = 0
    read = world.events.get

    async def counted(*args, **kwargs):
        nonlocal reads
        reads += 1
        return await read(*args, **kwargs)

    world.events.get = counted
    shown = await engine.wait_for_operation(started["operation_id"], timeout=1)

    assert shown["status"] == "running"  # unfinished: the next start resumes it
    assert reads <= 5, f"the log was read {reads} times in a 1 s wait"  # every 0.5 s, or when something is saved
