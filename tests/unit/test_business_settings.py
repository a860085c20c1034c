"""Settings (RDB, AOF, cache mode) on a Business addon, over the in-memory ports: every data node
takes them live and in its redis.conf, which keeps the node's role; a node that joins later (a
replacement, a node the healer starts again) comes up with them; a node that does not run is not
waited for; a failure puts the former settings back on every node; a crash at any step boundary,
or at any call to a port, and a restart finish the change."""

from __future__ import annotations

from uuid import UUID

import pytest

from engine.clusters import cluster_of
from engine.nodes import endpoint
from tests.unit.engine_fakes import APP, caught_up, restarted, settled
from tests.unit import test_saga_cluster_crashes as cluster_crashes
from tests.unit.fakes import Crash
from tests.unit.on_three_hosts import crash_at_every_call

PLAN = cluster_crashes.PLAN
# Its fixtures: a world of three hosts (a Business plan spreads each group of its cluster over them), its engine.
world, engine = cluster_crashes.world, cluster_crashes.engine


async def business_addon(engine) -> str:
    started = await engine.add_addon(APP, PLAN)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    return started["addon"]


async def change(engine, addon: str, setting: str, enabled: bool = True) -> dict:
    requested = await engine.database.change(APP, addon, setting, enabled)
    return await engine.wait_for_operation(requested["operation_id"], timeout=10)


async def primary_and_replica(world, addon: str) -> tuple[dict, dict]:
    cluster = await cluster_of(world.events, addon)
    [replica] = [n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary]
    return cluster.primary_node, replica


def redis_conf(world, node: dict) -> list[str]:
    return world.runtime.container(node["host"], node["container"]).config["redis.conf"].splitlines()


def live(world, node: dict, name: str) -> str:
    server = world.runtime.server(node["host"], node["container"])
    assert server is not None, f"{node['container']} does not run"
    return server.config[name]


def replica_of(primary: dict) -> str:
    return f"replicaof {primary['address']} {primary['port']}"


def assert_aof_on_both(world, primary: dict, replica: dict) -> None:
    """Live and in each file; the files keep the roles: the primary's names no primary, the replica's
    names the primary and makes it unelectable when read at a restart (before it is in sync)."""
    for node in (primary, replica):
        assert live(world, node, "appendonly") == "yes", node["container"]
        assert "appendonly yes" in redis_conf(world, node), node["container"]
    assert not [line for line in redis_conf(world, primary) if line.startswith("replicaof")]
    assert replica_of(primary) in redis_conf(world, replica) and "replica-priority 0" in redis_conf(world, replica)


async def test_aof_goes_to_both_data_nodes_live_and_in_files_that_keep_their_roles(world, engine):
    addon = await business_addon(engine)
    primary, replica = await primary_and_replica(world, addon)

    operation = await change(engine, addon, "aof")

    assert operation["status"] == "succeeded", operation
    assert (await world.addon(addon)).settings["aof"] is True
    assert_aof_on_both(world, primary, replica)
    [apply] = [s for s in operation["steps"] if s["name"] == "apply"]
    assert f"{primary['container']} (primary)" in apply["detail"] and f"{replica['container']} (replica)" in apply["detail"]
    [verify] = [s for s in operation["steps"] if s["name"] == "verify"]
    assert verify["detail"].startswith("2 data nodes run with them")

    for node in (replica, primary):  # a restart reads the file: the settings and the role are kept
        await world.runtime.stop_node(node["host"], node["container"], 10)
        await world.runtime.start_node(node["host"], node["container"])
        assert live(world, node, "appendonly") == "yes"
    info = await world.redis.replication(endpoint(replica, world.secrets.peek(addon)))
    assert (info["role"], info["master_port"], info["master_link_status"]) == ("slave", primary["port"], "up")


async def test_cache_mode_goes_to_both_data_nodes_and_off_again(world, engine):
    addon = await business_addon(engine)
    nodes = await primary_and_replica(world, addon)

    assert (await change(engine, addon, "cache-mode"))["status"] == "succeeded"
    for node in nodes:
        assert live(world, node, "maxmemory-policy") == "allkeys-lru"
        assert "maxmemory-policy allkeys-lru" in redis_conf(world, node)

    assert (await change(engine, addon, "cache-mode", False))["status"] == "succeeded"
    for node in nodes:
        assert live(world, node, "maxmemory-policy") == "noeviction"
        assert "maxmemory-policy noeviction" in redis_conf(world, node)


async def test_a_replacement_replica_comes_up_with_the_settings(world, engine):
    addon = await business_addon(engine)
    assert (await change(engine, addon, "aof"))["status"] == "succeeded"
    primary, replica = await primary_and_replica(world, addon)
    del world.runtime.hosts[replica["host"]].containers[replica["container"]]
    await caught_up(engine)

    [replacing] = [d["replacing"] for d in await engine.watcher.healer.look() if d.get("replacing")]
    assert (await engine.wait_for_operation(replacing, timeout=10))["status"] == "succeeded"

    _, new = await primary_and_replica(world, addon)
    assert new["id"] != replica["id"]
    assert_aof_on_both(world, primary, new)


async def test_a_plan_change_makes_its_new_data_nodes_with_the_settings(world, engine):
    addon = await business_addon(engine)
    assert (await change(engine, addon, "aof"))["status"] == "succeeded"
    old = {n["id"] for n in await primary_and_replica(world, addon)}

    requested = await engine.change_plan(APP, addon, "redis-business-512")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=10))["status"] == "succeeded"

    primary, replica = await primary_and_replica(world, addon)
    assert not {primary["id"], replica["id"]} & old
    for node in (primary, replica):
        assert live(world, node, "appendonly") == "yes" and "appendonly yes" in redis_conf(world, node)


async def test_a_stopped_replica_gets_them_in_its_file_and_comes_back_with_them(world, engine):
    """Not waited for: the primary takes them, the stopped replica's file has them, and the healer
    (which leaves the cluster alone until the change ends) starts it again with them."""
    addon = await business_addon(engine)
    primary, replica = await primary_and_replica(world, addon)
    world.runtime.kill(replica["host"], replica["container"])

    operation = await change(engine, addon, "aof")

    assert operation["status"] == "succeeded", operation
    assert "appendonly yes" in redis_conf(world, replica) and replica_of(primary) in redis_conf(world, replica)
    assert f"{replica['container']} (stopped" in operation["steps"][0]["detail"]
    assert live(world, primary, "appendonly") == "yes"
    await caught_up(engine)
    assert [d for d in await engine.watcher.healer.look() if d.get("started_again")]
    assert_aof_on_both(world, primary, replica)


async def test_with_no_data_node_running_the_change_fails_and_leaves_the_files_as_they_were(world, engine):
    addon = await business_addon(engine)
    nodes = await primary_and_replica(world, addon)
    for node in nodes:
        world.runtime.kill(node["host"], node["container"])

    operation = await change(engine, addon, "aof")

    assert operation["status"] == "failed"
    assert f"no data node of addon {addon} runs" in operation["error"]
    assert (await world.addon(addon)).settings["aof"] is False
    for node in nodes:
        assert "appendonly no" in redis_conf(world, node)


async def test_a_node_refusing_them_puts_the_former_settings_back_on_every_node(world, engine):
    addon = await business_addon(engine)
    primary, replica = await primary_and_replica(world, addon)
    world.redis.fail_for_good("configure", times=1, address=primary["address"], port=primary["port"])

    operation = await change(engine, addon, "aof")

    assert operation["status"] == "failed" and operation["error"].startswith("apply: ")
    assert (await world.addon(addon)).settings["aof"] is False
    assert [c["address"] for c in world.redis.calls_to("configure")] == [
        replica["address"], primary["address"], replica["address"], primary["address"]]  # the replica took them first
    for node in (primary, replica):
        assert live(world, node, "appendonly") == "no" and "appendonly no" in redis_conf(world, node)
    assert replica_of(primary) in redis_conf(world, replica)


# -- crashes ------------------------------------------------------------------------------------------------

BOUNDARIES = [("Operation.Started", False)] + [(f"Operation.StepSucceeded({step})", before)
                                               for step in ("apply", "verify", "publish") for before in (True, False)]


@pytest.mark.parametrize("event, before", BOUNDARIES,
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in BOUNDARIES])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_change_on_both_nodes(world, engine, event, before):
    addon = await business_addon(engine)
    world.events.crash_on(event, before=before)
    await changing_until_crash(engine, addon)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await changed_on_both(world, engine, addon)


async def test_a_crash_at_any_call_to_a_port_and_a_restart_finish_the_change_on_both_nodes():
    async def finished_on_both(world, engine, addon: str) -> None:
        if (await world.addon(addon)).operation_id is None and not await settings_operations(engine, addon):
            return  # the crash came in the command, before the change was recorded
        await changed_on_both(world, engine, addon)

    crashed = await crash_at_every_call(lambda world, engine: business_addon(engine), changing_until_crash,
                                        finished_on_both)
    assert len(crashed) >= 10, crashed


async def changing_until_crash(engine, addon: str) -> None:
    try:
        requested = await engine.database.change(APP, addon, "aof", True)
    except Crash:
        return
    await engine.coordinator.wait(UUID(requested["operation_id"]), timeout=10)


async def settings_operations(engine, addon: str) -> list[dict]:
    await caught_up(engine)
    return [o for o in await engine.operations(addon) if o["kind"] == "change_settings"]


async def changed_on_both(world, engine, addon: str) -> None:
    [operation] = await settings_operations(engine, addon)
    assert operation["status"] == "succeeded", operation
    assert (await world.addon(addon)).settings["aof"] is True and engine.inventory.unfinished == {}
    assert_aof_on_both(world, *await primary_and_replica(world, addon))
    assert world.runtime.broken_rules == []
    assert len(world.runtime.containers()) == 7  # no node made by a file's rewrite
