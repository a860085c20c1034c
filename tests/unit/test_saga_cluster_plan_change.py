"""A Business addon's plan change on the in-memory ports: its two data nodes replaced one at a time by
nodes with the new plan's memory, then one coordinated switch of the primary. At each step boundary
the engine dies and a new engine over the same world finishes the change: the cluster's seven nodes
run, the two data nodes new, each made once, with one failover; the Sentinels and HAProxy know exactly
the nodes of now. A step failing for good before the old replica is removed leaves the addon as it
was; after, the nodes in sync are kept and the extra one removed.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

import pytest

import engine.primary_switch as primary_switch
from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, caught_up, restarted, settled, started_engine
from tests.unit.on_three_hosts import giving_up_quickly, step_boundaries, engine, world  # noqa: F401 (fixtures)
from tests.unit.fakes import Crash
from tests.unit.test_saga_cluster_crashes import a_whole_cluster, created_once

FROM, TO = "redis-business-256", "redis-business-512"
KIND = "change_cluster_plan"


async def a_business_addon(world, engine) -> dict:
    started = await engine.add_addon(APP, FROM)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    cluster = await cluster_of(world.events, started["addon"])
    world.runtime.effects.clear()
    world.redis.effects.clear()
    return {"addon": started["addon"], "data": [n for n in cluster.live_nodes if n["role"] == "data"],
            "others": sorted(n["id"] for n in cluster.live_nodes if n["role"] != "data")}


async def change_crashing(engine, addon: str) -> None:
    try:
        operation_id = (await engine.change_plan(APP, addon, TO))["operation_id"]
    except Crash:
        return
    await engine.coordinator.wait(UUID(operation_id), timeout=10)


async def the_change(world, engine, addon: str):
    await caught_up(engine)
    [found] = [o for o in await engine.operations(addon) if o["kind"] == KIND]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return found


async def changed(world, given: dict, operation) -> None:
    assert operation["status"] == "succeeded", operation
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.plan, addon.memory_mib, addon.status, addon.operation_id) == (TO, 512, "running", None)
    await a_whole_cluster(world, cluster, addon)  # the Sentinels and HAProxy know exactly the nodes of now
    data = [n for n in cluster.live_nodes if n["role"] == "data"]
    assert {n["memory_mib"] for n in data} == {512}
    assert not {n["id"] for n in data} & {n["id"] for n in given["data"]}
    assert all(cluster.node(n["id"])["state"] == "retired" for n in given["data"])
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] != "data") == given["others"]
    assert set(created_once(world)) == {n["container"] for n in data}
    assert len([e for e in world.redis.effects if e[0] == "failover"]) == 1  # one switch, even when redone
    assert [p["reason"] for p in cluster.primaries][-1] == f"plan change to {TO}"


@pytest.mark.parametrize("event, before", step_boundaries(KIND),
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in step_boundaries(KIND)])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_plan_change(world, engine, event, before):
    given = await a_business_addon(world, engine)
    world.events.crash_on(event, before=before)
    await change_crashing(engine, given["addon"])
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await changed(world, given, await the_change(world, engine, given["addon"]))


async def test_without_a_crash_the_plan_change_ends_as_it_should(world, engine):
    given = await a_business_addon(world, engine)
    await change_crashing(engine, given["addon"])
    await settled(engine)
    operation = await the_change(world, engine, given["addon"])
    await changed(world, given, operation)
    assert "not restarted" in operation["steps"][-1]["detail"]


async def test_a_failure_before_the_old_replica_goes_leaves_the_addon_as_it_was(world, engine):
    given = await a_business_addon(world, engine)
    world.redis.fail_for_good("configure")  # the first new node is never made electable
    await change_crashing(engine, given["addon"])
    await settled(engine)
    operation = await the_change(world, engine, given["addon"])
    assert operation["status"] == "failed"
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.plan, addon.status, addon.operation_id) == (FROM, "running", None)
    assert addon.failure.startswith("sync_first: ")
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] == "data") == sorted(n["id"] for n in given["data"])
    await a_whole_cluster(world, cluster, addon, reset=False)


async def test_a_failed_switch_keeps_the_first_new_node_as_the_replica_and_removes_the_second(world):
    engine = await started_engine(world)
    given = await a_business_addon(world, engine)
    giving_up_quickly(engine)  # the switch fails at it
    world.redis.fail_for_good("sentinel_failover")
    await change_crashing(engine, given["addon"])
    await settled(engine, timeout=30)
    operation = await the_change(world, engine, given["addon"])
    assert operation["status"] == "failed"
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.plan, addon.status) == (FROM, "running") and addon.failure.startswith("switch: ")
    data = [n for n in cluster.live_nodes if n["role"] == "data"]
    old_primary = next(n for n in given["data"] if n["id"] == cluster.primary)
    assert Counter(n["memory_mib"] for n in data) == {256: 1, 512: 1}  # the old primary, the first new node
    assert old_primary in given["data"] and len(data) == 2
    await a_whole_cluster(world, cluster, addon, reset=False)


# -- the switch's bounds -----------------------------------------------------------------------------

async def test_writes_stay_paused_for_as_long_as_the_switch_may_take(world, engine):
    given = await a_business_addon(world, engine)
    await change_crashing(engine, given["addon"])
    await settled(engine)
    await changed(world, given, await the_change(world, engine, given["addon"]))
    longest_s = primary_switch.CAUGHT_UP_WITHIN_S + primary_switch.ELECTED_WITHIN_S + primary_switch.ROUTED_WITHIN_S
    [pause] = world.redis.calls_to("pause_writes")
    assert pause["pause_ms"] >= longest_s * 1000  # lapsing mid-failover, the old primary would take writes it then drops


async def test_a_failover_outlasting_the_switch_keeps_the_node_it_elects(world, monkeypatch):
    """The switch gives up while the Sentinels are still failing over onto a new node: undoing the change
    waits until they are done, and keeps the node they elected (it holds the data now)."""
    engine = await started_engine(world)
    monkeypatch.setattr(primary_switch, "ELECTED_WITHIN_S", 0.1)
    monkeypatch.setattr(primary_switch, "SETTLED_WITHIN_S", 0.1, raising=False)
    given = await a_business_addon(world, engine)
    giving_up_quickly(engine)  # the switch fails at it
    world.redis.failover_lasts_views = None  # still failing over when the switch gives up
    world.events.when_saved("Operation.StepFailed(switch)", lambda: setattr(world.redis, "failover_lasts_views", 3))
    await change_crashing(engine, given["addon"])
    await settled(engine, timeout=30)
    operation = await the_change(world, engine, given["addon"])
    assert operation["status"] == "failed" and "stays the primary" in operation["compensation"], operation
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    primary = cluster.primary_node
    assert primary["memory_mib"] == 512 and primary["state"] == "running"  # the elected new node, kept
    assert world.runtime.server(primary["host"], primary["container"]).replicaof is None


async def test_a_new_node_the_sentinels_elected_on_their_own_has_the_stalled_old_primary_demoted(world, engine):
    given = await a_business_addon(world, engine)
    old = next(n for n in given["data"] if n["role"] == "data" and world.runtime.server(n["host"], n["container"])
               .replicaof is None)
    old_server = world.runtime.server(old["host"], old["container"])
    roles = []
    world.events.when_saved("Operation.StepSucceeded(sync_second)",  # silent a second, it missed the failover
                            lambda: world.redis.fail_over_on_their_own(given["addon"], old_follows=False))
    world.events.when_saved("Operation.StepSucceeded(switch)", lambda: roles.append(old_server.replicaof))
    await change_crashing(engine, given["addon"])
    await settled(engine)
    await changed(world, given, await the_change(world, engine, given["addon"]))
    assert len(roles) == 1 and roles[0] is not None  # a replica once the switch is done: its writes refused
