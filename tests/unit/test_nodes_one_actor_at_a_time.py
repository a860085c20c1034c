"""Whoever acts on an addon's nodes acts alone, on its own nodes: the watcher brings back only the
primary, and not while an operation holds the addon; a cleanup removes only the node its own
operation replaced; a compensation whose save meets a change made meanwhile runs again."""

from __future__ import annotations

import asyncio
from uuid import UUID

from domain.cluster import Cluster
from tests.unit.engine_fakes import APP, a_running_addon, finished


async def until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.005)


def running(world) -> list[tuple[str, str, bool]]:
    return [(h, c, world.runtime.container(h, c).running) for h, c in world.runtime.containers()]


async def test_after_a_failed_cleanup_the_watcher_leaves_the_replaced_node_stopped(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("remove_node", container=addon.container)
    operation = await finished(engine, await engine.change_plan(APP, addon.name, "redis-starter-512"))
    assert [(s["name"], s["status"]) for s in operation["steps"]][-2:] == [("cleanup", "failed"), ("restart_app", "skipped")]
    world.runtime.heal()

    assert await engine.watcher.look() == []  # the old node stays stopped: the app must not write there
    assert (addon.host, addon.container, False) in running(world)


async def test_a_removal_asked_while_the_watcher_makes_a_node_again_leaves_nothing(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.hosts[addon.host].containers.pop(addon.container)  # `docker rm -f`
    making_it = world.runtime.gate("create_node", container=addon.container)
    looking = asyncio.create_task(engine.watcher.look())
    await until(lambda: len(world.runtime.calls_to("create_node", container=addon.container)) == 2)
    removing = asyncio.create_task(engine.remove_addon(APP, addon.name))
    await asyncio.sleep(0.05)
    assert not removing.done()  # it waits for the watcher to finish with the node
    making_it.set()
    await looking
    removal = await finished(engine, await removing)
    assert removal["status"] == "succeeded"
    assert world.runtime.containers() == [] and (await world.addon(addon.name)).status == "removed"


async def test_a_plan_change_asked_during_the_last_ones_cleanup_keeps_its_new_node(world, engine):
    addon = await a_running_addon(world, engine)
    first_cleanup = world.runtime.gate("remove_node", container=addon.container)
    first = await engine.change_plan(APP, addon.name, "redis-starter-512")
    await until(lambda: world.runtime.calls_to("remove_node", container=addon.container))
    second_creates = world.runtime.gate("create_node", host="host-a")
    second = await engine.change_plan(APP, addon.name, "redis-starter-1024")  # the addon is free after publish
    await until(lambda: len(world.runtime.calls_to("create_node", host="host-a")) == 2)
    first_cleanup.set()
    await asyncio.sleep(0.1)
    second_creates.set()

    assert (await finished(engine, first))["status"] == "succeeded"
    assert (await finished(engine, second))["status"] == "succeeded"
    moved = await world.addon(addon.name)
    assert (moved.plan, [c for _, c in world.runtime.containers()]) == ("redis-starter-1024", [moved.container])
    cluster = await world.events.get(Cluster.id_for(addon.name))
    assert [n["id"] for n in cluster.live_nodes] == [cluster.primary] == [moved.container]


async def test_a_compensation_whose_save_meets_a_schedule_change_runs_again_and_ends(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("copy_data")
    old_node_back = world.runtime.gate("start_node", container=addon.container)
    started = await engine.change_plan(APP, addon.name, "redis-starter-512")
    await until(lambda: len(world.runtime.calls_to("start_node", container=addon.container)) >= 2)
    await engine.backups.set_schedule(APP, addon.name, "4:00 UTC", "UTC")  # saves the addon meanwhile
    old_node_back.set()

    operation = await finished(engine, started)
    assert operation["status"] == "failed"
    back = await world.addon(addon.name)
    assert (back.status, back.is_busy, back.plan) == ("running", False, "redis-starter-256")
    assert (await world.operation(UUID(started["operation_id"]))).status == "failed"
