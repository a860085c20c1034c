"""Plan changes between a single node and a Business cluster when the Sentinels fail over on their own
(a primary silent for a second is declared down) or a failover outlasts the switch, on the in-memory
ports: the node holding the data is never removed, and no acknowledged write is lost.
"""

from __future__ import annotations

import asyncio

import engine.primary_switch as primary_switch
from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, SOME_KEYS, a_running_addon, caught_up, settled, started_engine
from tests.unit.on_three_hosts import giving_up_quickly, engine, world  # noqa: F401 (fixtures)
from tests.unit.test_saga_kind_change import (BUSINESS, DOWN, STARTER, UP, a_business_addon, change_crashing,
                                              on_starter, the_change, watch_restarts)

LATE_WRITES = 7  # keys the app's old instances write to the single node while the app restarts


def while_the_app_restarts(world, then) -> None:
    restart = world.restarter.restart

    async def restarting(app, method, environment):
        then()
        return await restart(app, method, environment)
    world.restarter.restart = restarting


async def until(condition, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# -- Business -> Starter --------------------------------------------------------------------------

async def test_the_sentinels_failing_over_while_the_app_restarts_elect_no_node_about_to_go(world, engine):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    elected = []
    while_the_app_restarts(world, lambda: elected.append(world.redis.fail_over_on_their_own(name)))
    await change_crashing(engine, name, STARTER)
    await settled(engine)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "succeeded", operation
    await on_starter(world, name, seen)
    assert elected == [None]  # the new node was the only one they could elect


async def test_an_old_node_elected_again_is_not_removed_until_the_single_node_is_the_primary_again(world, engine):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    moves = []  # an old node elected by a Sentinel yet to read its priority; the Sentinels then elect N again
    while_the_app_restarts(world, lambda: moves.append(world.redis.fail_over_on_their_own(name, any_priority=True)))
    view = world.redis.sentinel_view
    asked = []

    async def viewing(node, master):
        seen_now = await view(node, master)
        if moves and len(moves) == 1 and len(asked) == 2:  # the cluster is being retired: fail back to N
            moves.append(world.redis.fail_over_on_their_own(name, to=moves[0][0]))
        asked.append(seen_now) if moves else None
        return seen_now
    world.redis.sentinel_view = viewing
    await change_crashing(engine, name, STARTER)
    await settled(engine)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "succeeded", operation
    await on_starter(world, name, seen)
    assert len(moves) == 2 and moves[0] is not None, moves


async def test_a_failover_outlasting_the_switch_is_waited_for_with_writes_paused_then_finished(world, monkeypatch):
    engine = await started_engine(world)
    monkeypatch.setattr(primary_switch, "ELECTED_WITHIN_S", 0.1)
    monkeypatch.setattr(primary_switch, "SETTLED_WITHIN_S", 0.1, raising=False)
    name = await a_business_addon(world, engine)
    giving_up_quickly(engine)  # the switch fails at it
    seen = watch_restarts(world, name)
    world.redis.failover_lasts_views = None  # the Sentinels are still failing over when the switch gives up
    world.events.when_saved("Operation.StepFailed(switch)",  # it ends while the change is being undone
                            lambda: setattr(world.redis, "failover_lasts_views", 3))
    await change_crashing(engine, name, STARTER)
    await settled(engine, timeout=30)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "failed" and "finished forward" in operation["compensation"], operation
    assert not [e for e in world.redis.effects if e[0] == "writes resumed amid a failover"]
    await on_starter(world, name, seen)


# -- Starter -> Business --------------------------------------------------------------------------

async def test_the_single_node_silent_a_second_before_the_switch_loses_no_write(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    old = (await cluster_of(world.events, addon.name)).primary_node
    elected = []

    def stall_then_write():
        elected.append(world.redis.fail_over_on_their_own(addon.name, old_follows=False))
        server = world.runtime.server(old["host"], old["container"])  # the app's old instances write to it
        server.keys["1"] = server.keys.get("1", 0) + LATE_WRITES
    while_the_app_restarts(world, stall_then_write)
    await change_crashing(engine, addon.name, BUSINESS)
    await settled(engine)
    operation = await the_change(world, engine, addon.name, UP)
    assert operation["status"] == "succeeded", operation
    assert elected == [None]  # no replica electable before the switch
    cluster = await cluster_of(world.events, addon.name)
    primary = cluster.primary_node
    server = world.runtime.server(primary["host"], primary["container"])
    assert server.replicaof is None and cluster.node(old["id"])["state"] == "retired"
    assert server.keys == {**SOME_KEYS, "1": SOME_KEYS.get("1", 0) + LATE_WRITES}


async def test_a_failed_move_onto_business_keeps_a_new_node_the_sentinels_elected(world):
    engine = await started_engine(world)
    addon = await a_running_addon(world, engine, STARTER)
    giving_up_quickly(engine)  # the undo of start_proxies gives up at it
    old = (await cluster_of(world.events, addon.name)).primary_node
    moved = []

    def elect_a_new_node_then_fail():  # a Sentinel yet to read a priority; then the HAProxy never start
        moved.append(world.redis.fail_over_on_their_own(addon.name, any_priority=True))
        world.runtime.fail_for_good("start_node")
    world.events.when_saved("Operation.StepSucceeded(wait_sentinels)", elect_a_new_node_then_fail)
    started = await engine.change_plan(APP, addon.name, BUSINESS)
    await until(lambda: any("Addon.NeedsAttention" in s for s in world.events.saves))
    await caught_up(engine)
    shown = await engine.addon(APP, addon.name)
    assert shown["status"] == "needs-attention" and "no longer the primary" in shown["failure"], shown
    [(_, new_at)] = moved
    cluster = await cluster_of(world.events, addon.name)
    [new] = [n for n in cluster.live_nodes if f"{n['address']}:{n['port']}" == new_at]
    assert world.runtime.server(new["host"], new["container"]).keys == SOME_KEYS  # kept, with the data

    world.runtime.heal()
    world.redis.fail_over_on_their_own(addon.name, to=f"{old['address']}:{old['port']}")  # back on S
    operation = await engine.wait_for_operation(started["operation_id"], timeout=15)
    assert operation["status"] == "failed", operation
    back = await world.addon(addon.name)
    assert (back.plan, back.status) == (STARTER, "running")
    assert world.runtime.containers() == [(addon.host, addon.container)]
    assert world.runtime.server(addon.host, addon.container).replicaof is None
    assert world.key_counts(back) == SOME_KEYS


async def test_a_retirement_of_the_cluster_cut_short_after_two_sentinels_went_is_finished(world, engine):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    last = sorted(n["container"] for n in (await cluster_of(world.events, name)).live_nodes if n["role"] == "sentinel")[-1]
    world.runtime.fail_for_good("remove_node", container=last)  # the two others are gone: they name nobody now
    world.events.when_saved("Addon.NeedsAttention", lambda: world.runtime.heal("remove_node"))
    await change_crashing(engine, name, STARTER)
    await until(lambda: any("Addon.NeedsAttention" in s for s in world.events.saves))
    await settled(engine, timeout=20)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "failed" and "finished forward" in operation["compensation"], operation
    await on_starter(world, name, seen)
