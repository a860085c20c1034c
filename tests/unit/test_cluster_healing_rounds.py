"""A Business cluster healed by the healer's rounds (engine/cluster_healing.py), on the in-memory fakes,
past a single replacement (test_saga_cluster_crashes.py): a host lost with a node of each group on it,
and what the cluster's ports hold once the HAProxy holding the entry address was replaced."""

from __future__ import annotations

import pytest

from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, THREE_HOSTS, World, caught_up, settled, shut_down, started_engine
from tests.unit.test_saga_cluster_crashes import PLAN, a_whole_cluster

ROUNDS = 6


@pytest.fixture
async def world():
    world = World(hosts=THREE_HOSTS)
    yield world
    await shut_down(world)


@pytest.fixture
async def engine(world):
    return await started_engine(world, host_grace_s=0.0)


async def a_cluster(world, engine):
    started = await engine.add_addon(APP, PLAN)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    return await world.addon(started["addon"])


async def rounds(engine, count: int = ROUNDS) -> list[dict]:
    """The watcher's rounds of the healer, each replacement it starts finished before the next round."""
    done = []
    for _ in range(count):
        await caught_up(engine)
        done += await engine.watcher.healer.look()
        await settled(engine)
    return done


async def test_a_lost_host_is_healed_round_by_round_and_what_was_left_there_is_removed_once_it_answers(world, engine):
    addon = await a_cluster(world, engine)
    cluster = await cluster_of(world.events, addon.name)
    replica = next(n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary)
    lost_host = replica["host"]
    on_it = {n["id"]: n for n in cluster.live_nodes if n["host"] == lost_host}
    world.runtime.lose_host(lost_host)

    done = await rounds(engine)

    cluster = await cluster_of(world.events, addon.name)
    replaced = {d["node"] for d in done if d.get("replacing")}
    movable = {i for i, n in on_it.items() if n["role"] != "sentinel"}  # Sentinels already run on the other two
    assert replaced == movable, done
    assert {n["id"] for n in cluster.left_behind} == movable
    [sentinel] = [i for i, n in on_it.items() if n["role"] == "sentinel"]
    waiting = cluster.node(sentinel)  # its spread leaves it no host: it waits for its own
    assert waiting["state"] == "down" and waiting["waiting"].startswith("no host can take a sentinel node")
    operations = [o for o in await engine.operations(addon.name) if o["kind"] == "replace_node"]
    assert [o["status"] for o in operations] == ["succeeded"] * len(movable), operations

    world.runtime.hosts[lost_host].answers = True  # its machine is back, its containers exited
    done = await rounds(engine, 2)

    cluster = await cluster_of(world.events, addon.name)
    assert {d["node"] for d in done if d.get("removed") == "left behind"} == movable
    assert {d["node"] for d in done if d.get("started_again")} == {sentinel}
    assert all(cluster.node(i)["state"] == "retired" for i in movable)
    assert cluster.node(sentinel)["state"] == "running"
    await a_whole_cluster(world, cluster, await world.addon(addon.name))


async def test_the_entry_stays_held_after_the_haproxy_whose_port_it_is_was_replaced(world, engine):
    addon = await a_cluster(world, engine)
    cluster = await cluster_of(world.events, addon.name)
    entry_host = next(h.name for h in THREE_HOSTS if h.address == addon.address)
    [holder] = [n for n in cluster.live_nodes if (n["host"], n["port"]) == (entry_host, addon.port)]
    del world.runtime.hosts[holder["host"]].containers[holder["container"]]
    done = await rounds(engine, 1)
    assert [d["node"] for d in done if d.get("replacing")] == [holder["id"]]
    await a_whole_cluster(world, await cluster_of(world.events, addon.name), addon)  # the new HAProxy binds the entry

    second = await engine.add_addon(APP, PLAN)  # places nodes on every host, each on the lowest free port

    placed = (await cluster_of(world.events, second["addon"])).live_nodes
    at_the_entry = [n["container"] for n in placed if (n["host"], n["port"]) == (entry_host, addon.port)]
    assert at_the_entry == [], (f"{at_the_entry} placed at {addon.address}:{addon.port}, the entry the HAProxy of "
                                f"{addon.name} bind: it cannot start there")
    assert (entry_host, addon.port) in {(t.host, t.port) for t in engine.inventory.tenants()}


async def test_a_fact_of_the_cluster_recorded_as_a_replacement_starts_leaves_it_to_the_next_round(world, engine):
    """The Sentinels' word on a node can be recorded while the healer decides: its round must not fail
    (the watcher would skip every other cluster that round), and the next round replaces the node."""
    addon = await a_cluster(world, engine)
    cluster = await cluster_of(world.events, addon.name)
    replica = next(n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary)
    world.runtime.lose_host(replica["host"])
    healer = engine.watcher.healer
    record = healer.starter.record

    async def a_fact_first(operation, *changed):
        healer.starter.record = record  # once
        seen = await cluster_of(world.events, addon.name)
        seen.sentinels_saw_down(replica["id"], "sdown", "a-sentinel", "2026-12-02T14:09:19+00:00")
        await world.events.save(seen)
        return await record(operation, *changed)

    healer.starter.record = a_fact_first
    await caught_up(engine)
    first = await healer.look()
    assert first and not any(d.get("replacing") for d in first), first
    assert healer.starter.record is record  # the fact was recorded in the middle of that round
    await settled(engine)
    assert replica["id"] in {d["node"] for d in await rounds(engine, 2) if d.get("replacing")}
