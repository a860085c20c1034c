"""A Business addon's engine upgrade on the in-memory ports (reference, "Database Upgrade": Business plans
get a "zero-downtime upgrade of minor version"; "once the operation is finished, the application is
restarted"): its two data nodes replaced one at a time by nodes of the new build, one coordinated switch of
the primary, then the app restarted. At each step boundary the engine dies and a new engine over the same
world finishes the upgrade. A failure before the old replica goes leaves the cluster on the old version.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import pytest

from domain.backup import Backup
from domain.errors import UpgradeNotAllowed
from domain.operation import STEPS
from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, caught_up, restarted, settled
from tests.unit.on_three_hosts import step_boundaries, engine, world  # noqa: F401 (fixtures)
from tests.unit.fakes import Crash
from tests.unit.test_saga_cluster_crashes import a_whole_cluster, created_once

PLAN, FROM, TO = "redis-business-256", "6.2.7", "6.2.14"  # builds without TLS: the nodes talk plaintext
KIND = "upgrade_cluster"


async def a_business_addon(world, engine, version: str = FROM) -> dict:
    started = await engine.add_addon(APP, PLAN, version=version)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    cluster = await cluster_of(world.events, started["addon"])
    world.runtime.effects.clear()
    world.redis.effects.clear()
    return {"addon": started["addon"], "data": [n for n in cluster.live_nodes if n["role"] == "data"],
            "others": sorted(n["id"] for n in cluster.live_nodes if n["role"] != "data")}


async def upgrade_crashing(engine, addon: str, version: str = TO) -> None:
    try:
        operation_id = (await engine.database_version.upgrade(APP, addon, version))["operation_id"]
    except Crash:
        return
    await engine.coordinator.wait(UUID(operation_id), timeout=10)


async def the_upgrade(world, engine, addon: str):
    await caught_up(engine)
    [found] = [o for o in await engine.operations(addon) if o["kind"] == KIND]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return found


async def upgraded(world, given: dict, operation, version: str = TO) -> None:
    assert operation["status"] == "succeeded", operation
    assert [s["name"] for s in operation["steps"]] == STEPS[KIND]  # the app restarted last, as the reference says
    safety = next(s for s in operation["steps"] if s["name"] == "safety_backup")["detail"]
    assert safety.startswith("pre-upgrade backup ") and "not set back" not in safety, safety
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.redis_version, addon.status, addon.operation_id) == (version, "running", None)
    await a_whole_cluster(world, cluster, addon)  # the Sentinels and HAProxy know exactly the nodes of now
    data = [n for n in cluster.live_nodes if n["role"] == "data"]
    assert {n["version"] for n in data} == {version}
    assert {world.runtime.container(n["host"], n["container"]).image for n in data} == {f"redis-addons/redis:{version}"}
    assert all(cluster.node(n["id"])["state"] == "retired" for n in given["data"])
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] != "data") == given["others"]
    assert set(created_once(world)) == {n["container"] for n in data}
    assert len([e for e in world.redis.effects if e[0] == "failover"]) == 1  # one switch, even when redone
    assert [p["reason"] for p in cluster.primaries][-1] == f"upgrade to {version}"
    assert [app for app, _, _ in world.restarter.restarts] == [APP]  # once, at the end


@pytest.mark.parametrize("event, before", step_boundaries(KIND),
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in step_boundaries(KIND)])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_upgrade(world, engine, event, before):
    given = await a_business_addon(world, engine)
    world.events.crash_on(event, before=before)
    await upgrade_crashing(engine, given["addon"])
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    operation = await the_upgrade(world, engine, given["addon"])
    world.restarter.restarts[:] = world.restarter.restarts[-1:]  # a crash after the restart may redo it
    await upgraded(world, given, operation)


async def test_without_a_crash_the_upgrade_ends_on_the_new_build_with_the_app_restarted(world, engine):
    given = await a_business_addon(world, engine)
    await upgrade_crashing(engine, given["addon"])
    await settled(engine)
    await upgraded(world, given, await the_upgrade(world, engine, given["addon"]))


async def test_half_way_through_the_nodes_show_both_builds_and_the_upgrade_resumes(world, engine):
    given = await a_business_addon(world, engine)
    world.events.crash_on("Operation.StepSucceeded(retire_replica)", before=False)
    await upgrade_crashing(engine, given["addon"])
    shown = await engine.database_version.show(APP, given["addon"])
    assert sorted((n["version"], n["is_primary"]) for n in shown["nodes"]) == [(TO, False), (FROM, True)]
    assert shown["version"] == FROM  # the addon's version changes when every node runs the new one
    engine = await restarted(world, engine)
    await settled(engine)
    await upgraded(world, given, await the_upgrade(world, engine, given["addon"]))


async def test_a_failure_before_the_old_replica_goes_leaves_the_old_version(world, engine):
    given = await a_business_addon(world, engine)
    world.redis.fail_for_good("configure")  # the first new node is never made electable
    await upgrade_crashing(engine, given["addon"])
    await settled(engine)
    operation = await the_upgrade(world, engine, given["addon"])
    assert operation["status"] == "failed"
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.redis_version, addon.status, addon.operation_id) == (FROM, "running", None)
    assert addon.failure.startswith("sync_first: ")
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] == "data") == sorted(n["id"] for n in given["data"])
    assert world.restarter.restarts == []
    await a_whole_cluster(world, cluster, addon, reset=False)


async def test_a_cluster_talking_tls_is_not_moved_to_a_build_without_it(world, engine):
    given = await a_business_addon(world, engine, version="7.0.15")  # its nodes talk TLS to each other
    with pytest.raises(UpgradeNotAllowed, match="the cluster's nodes talk TLS to each other, and valkey 8.1.8 is "
                                                "built without TLS") as refused:
        await engine.database_version.upgrade(APP, given["addon"], "8.1.8")
    assert refused.value.rule == "upgrade-keeps-tls"
    assert [o["kind"] for o in await engine.operations(given["addon"])] == ["provision_cluster"]  # nothing recorded


# -- a major step that does not roll: writes stopped, the data moved through the safety backup ------------

STOPPED = "upgrade_cluster_stopped"


def not_rolling(engine, version: str) -> None:
    """The catalogue records no proof that `version` replicates from the major below (its flag forces the
    stop path)."""
    build = engine.versions.get(version)
    engine.versions._versions[version] = replace(build, rolling_from=())


async def stopped_upgrade(world, engine, addon: str):
    await caught_up(engine)
    [found] = [o for o in await engine.operations(addon) if o["kind"] == STOPPED]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return found


async def upgraded_with_writes_stopped(world, given: dict, operation) -> None:
    assert operation["status"] == "succeeded", operation
    assert [s["name"] for s in operation["steps"]] == STEPS[STOPPED]
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.redis_version, addon.status, addon.operation_id) == ("7.0.15", "running", None)
    data = [n for n in cluster.live_nodes if n["role"] == "data"]
    assert {n["version"] for n in data} == {"7.0.15"} and len(data) == 2
    assert all(cluster.node(n["id"])["state"] == "retired" for n in given["data"])
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] != "data") == given["others"]
    assert set(created_once(world)) == {n["container"] for n in data}
    assert [p["reason"] for p in cluster.primaries][-1] == "upgrade to 7.0.15 (writes stopped)"
    assert world.redis.calls_to("configure", parameters={"min-replicas-to-write": "1000"})  # writes refused first
    backup = await world.events.get(Backup.pre_upgrade_id(UUID(operation["id"])))  # the data moved
    assert (backup.kind, backup.status, backup.redis_version) == ("pre-upgrade", "done", "6.2.14")


@pytest.mark.parametrize("event, before", step_boundaries(STOPPED),
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}"
                              for e, b in step_boundaries(STOPPED)])
async def test_a_major_step_that_does_not_roll_stops_writes_and_survives_a_crash(world, engine, event, before):
    given = await a_business_addon(world, engine, version="6.2.14")
    not_rolling(engine, "7.0.15")
    world.events.crash_on(event, before=before)
    await upgrade_crashing(engine, given["addon"], "7.0.15")
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    not_rolling(engine, "7.0.15")
    await settled(engine)
    await upgraded_with_writes_stopped(world, given, await stopped_upgrade(world, engine, given["addon"]))


async def test_a_stopped_upgrade_failing_before_the_switch_gives_writes_back_on_the_old_version(world, engine):
    given = await a_business_addon(world, engine, version="6.2.14")
    not_rolling(engine, "7.0.15")
    world.redis.fail_for_good("keyspace")  # the new primary's data is never verified
    await upgrade_crashing(engine, given["addon"], "7.0.15")
    await settled(engine)
    operation = await stopped_upgrade(world, engine, given["addon"])
    assert operation["status"] == "failed"
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.redis_version, addon.status) == ("6.2.14", "running")
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] == "data") == sorted(n["id"] for n in given["data"])
    old_primary = next(n for n in given["data"] if n["id"] == cluster.primary)
    server = world.runtime.server(old_primary["host"], old_primary["container"])
    assert server.config["min-replicas-to-write"] == "1"  # it takes writes again
    assert world.restarter.restarts == []


async def test_a_switch_undone_half_way_removes_a_new_primary_that_took_no_write(world, engine):
    """The third Sentinel cannot be moved: the switch fails with two Sentinels naming the new primary (HAProxy
    routes to it then). It refused every write until all named it, so removing it loses none."""
    given = await a_business_addon(world, engine, version="6.2.14")
    not_rolling(engine, "7.0.15")
    cluster = await cluster_of(world.events, given["addon"])
    last = sorted((n for n in cluster.live_nodes if n["role"] == "sentinel"), key=lambda n: n["id"])[-1]
    world.runtime.fail_for_good("start_node", times=1, container=last["container"])
    asked = {}  # each data node's min-replicas-to-write as the switch fails (HAProxy routes to the new one)

    def look() -> None:
        for host, name in world.runtime.containers():
            if (server := world.runtime.server(host, name)) is not None and server.role == "data":
                asked[name] = server.config["min-replicas-to-write"]
    world.events.when_saved("Operation.StepFailed(switch)", look)
    await upgrade_crashing(engine, given["addon"], "7.0.15")
    await settled(engine, timeout=30)
    operation = await stopped_upgrade(world, engine, given["addon"])
    assert operation["status"] == "failed", operation
    assert next(s for s in operation["steps"] if s["name"] == "switch")["status"] == "failed"
    primary = next(n for n in given["data"] if n["id"] == cluster.primary)
    new_primary = next(n for n in (await cluster_of(world.events, given["addon"])).nodes.values()
                       if n.get("placed_by") == operation["id"] and n["replaces"] == primary["id"])
    assert new_primary["state"] == "retired"  # removed by the undo
    opened = world.redis.calls_to("configure", parameters={"min-replicas-to-write": "1"},
                                  address=new_primary["address"], port=new_primary["port"])
    assert opened == [] and asked[new_primary["container"]] == "1000"  # it refused every write


async def test_an_old_primary_that_took_writes_again_fails_the_switch_and_keeps_them(world, engine):
    """Restarted during the stop window, the old primary read `min-replicas-to-write 1` from its file and took
    writes the new pair lacks: the upgrade fails at the switch, and the cluster stays on the old version."""
    given = await a_business_addon(world, engine, version="6.2.14")
    not_rolling(engine, "7.0.15")
    primary = next(n for n in given["data"] if world.runtime.server(n["host"], n["container"]).replicaof is None)
    server = world.runtime.server(primary["host"], primary["container"])
    world.events.when_saved("Operation.StepSucceeded(safety_backup)",
                            lambda: server.config.__setitem__("min-replicas-to-write", "1"))
    await upgrade_crashing(engine, given["addon"], "7.0.15")
    await settled(engine, timeout=30)
    operation = await stopped_upgrade(world, engine, given["addon"])
    assert operation["status"] == "failed", operation
    addon = await world.addon(given["addon"])
    assert (addon.redis_version, addon.status) == ("6.2.14", "running")
    assert addon.failure.startswith("switch: ") and "may have taken writes" in addon.failure
    cluster = await cluster_of(world.events, addon.name)
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] == "data") == sorted(n["id"] for n in given["data"])


async def test_a_data_node_lost_half_way_comes_back_on_the_primarys_build(world, engine):
    """A cluster left half-way (an upgrade that failed past the point of no return): its primary runs the new
    build. Its replica lost, the healer's replacement runs the primary's build, not the lost node's older one
    (a replica may be newer than its primary, never older: a major step's would never sync)."""
    given = await a_business_addon(world, engine)
    cluster = await cluster_of(world.events, given["addon"])
    cluster.change_node_version(cluster.primary, TO)
    await world.events.save(cluster)
    replica = next(n for n in given["data"] if n["id"] != cluster.primary)
    del world.runtime.hosts[replica["host"]].containers[replica["container"]]
    await caught_up(engine)
    [operation_id] = [d["replacing"] for d in await engine.watcher.healer.look() if d.get("replacing")]
    assert (await engine.wait_for_operation(operation_id, timeout=10))["status"] == "succeeded"
    cluster = await cluster_of(world.events, given["addon"])
    [new] = [n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary]
    assert new["version"] == TO and world.runtime.container(new["host"], new["container"]).image.endswith(TO)


async def test_a_host_without_the_new_build_fails_the_upgrade_before_anything_changes(world, engine):
    given = await a_business_addon(world, engine)
    for host in world.runtime.hosts.values():
        host.images_missing.add(f"redis-addons/redis:{TO}")
    await upgrade_crashing(engine, given["addon"])
    await settled(engine)
    operation = await the_upgrade(world, engine, given["addon"])
    addon = await world.addon(given["addon"])
    assert operation["status"] == "failed" and "has no image redis-addons/redis:6.2.14" in addon.failure
    placed = [n for n in (await cluster_of(world.events, addon.name)).nodes.values()
              if n.get("placed_by") == operation["id"]]
    assert addon.redis_version == FROM and placed and all(n["state"] == "retired" for n in placed)
    assert not [c for c in world.runtime.calls_to("create_node") if c["container"] in {n["container"] for n in placed}]
