"""A restore into a Business addon on the in-memory ports (engine/cluster_restore.py): a new pair of data
nodes from the backup, the Sentinels moved onto it one at a time, the old pair removed. At each step
boundary the engine dies and a new engine over the same world finishes the restore: the new primary holds
the backup's keys, the cluster's seven nodes run and know exactly each other. A failure before the switch,
even one amid it, leaves the cluster as it was, its data and its Sentinels on the old primary.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, SOME_EXPIRING, SOME_KEYS, caught_up, finished, restarted, settled
from tests.unit.on_three_hosts import step_boundaries, engine, world  # noqa: F401 (fixtures)
from tests.unit.fakes import Crash
from tests.unit.test_saga_cluster_crashes import a_whole_cluster, created_once

PLAN = "redis-business-256"
KIND = "restore_cluster"
WRITTEN_SINCE = {"0": 5, "2": 9}



def primary_server(world, cluster):
    node = cluster.primary_node
    return world.runtime.server(node["host"], node["container"])


async def a_backed_up_business_addon(world, engine) -> dict:
    """Given: a Business addon backed up holding SOME_KEYS, then written to."""
    operation = await finished(engine, await engine.add_addon(APP, PLAN))
    assert operation["status"] == "succeeded", operation
    name = operation["addon"]
    server = primary_server(world, await cluster_of(world.events, name))
    server.keys.update(SOME_KEYS)
    server.expires.update(SOME_EXPIRING)
    backup = await engine.backups.create(APP, name)
    assert (await finished(engine, backup))["status"] == "succeeded"
    for db, n in WRITTEN_SINCE.items():
        server.keys[db] = server.keys.get(db, 0) + n
    cluster = await cluster_of(world.events, name)
    world.runtime.effects.clear()
    return {"addon": name, "backup_id": backup["backup_id"], "keys": dict(server.keys),
            "data": [n for n in cluster.live_nodes if n["role"] == "data"]}


async def restore_crashing(engine, given: dict) -> None:
    try:
        started = await engine.backups.restore(APP, given["addon"], given["backup_id"])
    except Crash:
        return
    await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)


async def the_restore(world, engine, addon: str) -> dict:
    await caught_up(engine)
    [found] = [o for o in await engine.operations(addon) if o["kind"] == KIND]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return found


async def restored(world, given: dict, operation: dict) -> None:
    assert operation["status"] == "succeeded", operation
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.status, addon.operation_id) == ("running", None)
    await a_whole_cluster(world, cluster, addon)  # the Sentinels and HAProxy know exactly the nodes of now
    data = [n for n in cluster.live_nodes if n["role"] == "data"]
    assert not {n["id"] for n in data} & {n["id"] for n in given["data"]}
    assert all(cluster.node(n["id"])["state"] == "retired" for n in given["data"])
    assert set(created_once(world)) == {n["container"] for n in data}  # the Sentinels restarted, not remade
    assert {db: n for db, n in primary_server(world, cluster).keys.items() if n} == SOME_KEYS  # not WRITTEN_SINCE
    assert addon.container == cluster.primary_node["container"]
    assert [p["reason"] for p in cluster.primaries][-1] == f"restore of backup {given['backup_id']}"


async def as_it_was(world, given: dict, operation: dict, failed_at: str) -> None:
    assert operation["status"] == "failed", operation
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.status, addon.operation_id) == ("running", None)
    assert addon.failure.startswith(f"{failed_at}: "), addon.failure
    assert sorted(n["id"] for n in cluster.live_nodes if n["role"] == "data") == sorted(n["id"] for n in given["data"])
    await a_whole_cluster(world, cluster, addon, reset=False)
    server = primary_server(world, cluster)
    assert server.keys == given["keys"] and not server.paused  # its data untouched, its writes resumed


@pytest.mark.parametrize("event, before", step_boundaries(KIND),
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in step_boundaries(KIND)])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_restore(world, engine, event, before):
    given = await a_backed_up_business_addon(world, engine)
    world.events.crash_on(event, before=before)
    await restore_crashing(engine, given)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await restored(world, given, await the_restore(world, engine, given["addon"]))


async def test_without_a_crash_the_backup_is_the_clusters_data(world, engine):
    given = await a_backed_up_business_addon(world, engine)
    await restore_crashing(engine, given)
    await settled(engine)
    operation = await the_restore(world, engine, given["addon"])
    await restored(world, given, operation)
    assert "same REDIS_URL" in operation["steps"][-1]["detail"]


async def test_data_that_is_not_the_backups_leaves_the_cluster_as_it_was(world, engine):
    given = await a_backed_up_business_addon(world, engine)
    world.redis.fail_for_good("keyspace")
    await restore_crashing(engine, given)
    await settled(engine)
    await as_it_was(world, given, await the_restore(world, engine, given["addon"]), "verify")


async def test_a_switch_failing_halfway_puts_every_sentinel_back_on_the_old_primary(world, engine):
    given = await a_backed_up_business_addon(world, engine)
    cluster = await cluster_of(world.events, given["addon"])
    second = [n for n in cluster.live_nodes if n["role"] == "sentinel"][1]
    world.runtime.fail_for_good("start_node", times=1, container=second["container"])
    await restore_crashing(engine, given)
    await settled(engine)
    await as_it_was(world, given, await the_restore(world, engine, given["addon"]), "switch")
