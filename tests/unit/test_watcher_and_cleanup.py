"""The node watcher leaves alone an addon whose operation is unfinished: after a crash during a
plan change's cleanup, the old node it finds stopped is the cleanup's to remove, not the
watcher's to bring back."""

from __future__ import annotations

import asyncio
import asyncio
from uuid import UUID

from domain.cluster import Cluster
from tests.unit.engine_fakes import APP, a_running_addon, restarted, settled


async def test_the_node_watcher_leaves_alone_the_old_node_a_plan_change_is_cleaning_up(world, engine):
    addon = await a_running_addon(world, engine)
    old = dict(host=addon.host, container=addon.container)
    # The engine dies once the cleanup removed the old node, before that is recorded.
    world.events.crash_on("Operation.StepSucceeded(cleanup)", before=True)
    started = await engine.change_plan(APP, addon.name, "redis-starter-512")
    await engine.coordinator.wait(UUID(started["operation_id"]), timeout=5)
    cleanup_again = world.runtime.gate("remove_node", volume=addon.volume, **old)
    made_before = len(world.runtime.calls_to("create_node", **old))  # by the provisioning

    engine = await restarted(world, engine)  # the plan change resumes: its cleanup runs again, held here
    assert await engine.watcher.look() == []  # the watcher's first look at start, the cleanup unfinished
    assert len(world.runtime.calls_to("create_node", **old)) == made_before  # not made again
    cleanup_again.set()
    await settled(engine)
    assert await engine.watcher.look() == []

    moved = await world.addon(addon.name)
    cluster = await world.events.get(Cluster.id_for(addon.name))
    assert cluster.nodes[addon.container]["state"] == "retired"
    assert world.runtime.containers() == [("host-b", moved.container)]


def test_a_retired_node_is_neither_down_nor_recovered():
    cluster = Cluster(addon="my-app-3030", app="my-app")
    cluster.place_node({"id": "c1", "role": "data", "host": "host-a", "address": "127.0.1.1", "port": 1,
                        "tls_port": None, "container": "c1", "volume": "v", "memory_mib": 1, "version": "7.0.15"})
    cluster.retire_node("c1")
    cluster.collect_events()
    cluster.mark_node_down("c1", "gone", "2026-12-01T00:00:00+00:00")
    cluster.mark_node_recovered("c1", "restarted", "2026-12-01T00:00:01+00:00")
    assert cluster.collect_events() == [] and cluster.node("c1")["state"] == "retired"


async def test_the_node_watcher_goes_on_when_a_host_does_not_answer(world, engine):
    """A round once failed whole while any host's Docker did not answer: a node killed on another host
    stayed down. Now that node is brought back, and the silent host's node is down for what it is once
    its host stays silent a second round (one slow `docker ps` is no host down)."""
    on_a = await a_running_addon(world, engine)
    on_b = await a_running_addon(world, engine)
    assert (on_a.host, on_b.host) == ("host-a", "host-b")
    world.runtime.lose_host("host-b")
    world.runtime.kill("host-a", on_a.container)

    seen = {s["addon"]: s for s in await engine.watcher.look()}
    assert seen[on_a.name]["recovered"] == "restarted on its data"
    assert on_b.name not in seen
    assert (await world.events.get(Cluster.id_for(on_b.name))).nodes[on_b.container]["state"] == "running"

    [seen] = await engine.watcher.look()
    assert seen == {"addon": on_b.name, "node": on_b.container, "down": "its host host-b does not answer",
                    "recovered": None}
    assert await engine.watcher.look() == []  # said once


async def test_the_node_watcher_tries_nothing_on_a_silent_host(world, engine, monkeypatch):
    """A wedged dockerd (it accepts, never answers) hung the watcher's loop for good in `is_running` on the
    silent host's node, holding its addon's claim. Now nothing is asked of that host until it answers."""
    on_a = await a_running_addon(world, engine)
    world.runtime.lose_host("host-a")
    is_running = world.runtime.is_running

    async def wedged_on_a(host, container):
        if host == "host-a":
            await asyncio.Event().wait()
        return await is_running(host, container)

    monkeypatch.setattr(world.runtime, "is_running", wedged_on_a)
    async with asyncio.timeout(5):
        await engine.watcher.look()
        [seen] = await engine.watcher.look()
    assert seen["down"] == "its host host-a does not answer" and seen["recovered"] is None

    world.runtime.hosts["host-a"].answers = True
    monkeypatch.setattr(world.runtime, "is_running", is_running)
    [seen] = await engine.watcher.look()
    assert seen["addon"] == on_a.name and seen["recovered"], seen


async def test_one_addons_surprise_does_not_starve_the_others(world, engine, monkeypatch):
    """One addon whose healing raised what nobody expected (a KeyError: its node on a host no longer in the
    hosts file) ended the whole round, so no other addon was looked after."""
    on_a = await a_running_addon(world, engine)
    on_b = await a_running_addon(world, engine)
    world.runtime.kill("host-a", on_a.container)
    world.runtime.kill("host-b", on_b.container)
    is_running = world.runtime.is_running

    async def surprised_on_b(host, container, **how):
        if host == "host-b":
            raise KeyError(host)
        return await is_running(host, container, **how)

    monkeypatch.setattr(world.runtime, "is_running", surprised_on_b)
    seen = {s["addon"]: s for s in await engine.watcher.look()}
    assert seen[on_a.name]["recovered"] == "restarted on its data"
    assert on_b.name not in seen  # tried again next round


async def test_a_node_that_crash_loops_as_it_starts_does_not_hold_the_round(world, engine, monkeypatch):
    """The watcher waited READY_WITHIN_S (15 s) for a server whose container exits as it starts (its port
    taken), every round, and every other addon waited with it; Docker says such a container is running
    (and restarting), so it asks whether it runs steadily."""
    addon = await a_running_addon(world, engine)
    world.runtime.kill(addon.host, addon.container)
    start_node = world.runtime.start_node

    async def exits_as_it_starts(host, container):
        await start_node(host, container)
        node = world.runtime.hosts[host].containers[container]
        node.running, node.server, node.crash_loops = False, None, True

    monkeypatch.setattr(world.runtime, "start_node", exits_as_it_starts)
    [seen] = await asyncio.wait_for(engine.watcher.look(), timeout=5)  # not a measure: the round must end
    assert seen["recovered"] is None and seen["down"]
