"""Restore of another addon's backup on the in-memory ports (engine/restore_requests.py): one that does
not fit the target's plan is refused with an error naming the backup's addon and the target's plan, and
nothing is started; one that fits goes into a Business addon of another app."""

from __future__ import annotations

import pytest

from domain.errors import DatasetTooLarge
from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, a_running_addon, finished
from tests.unit.on_three_hosts import engine, world  # noqa: F401 (fixtures)
from tests.unit.fakes.redis import BYTES_PER_KEY

OTHER_APP = "other-app"


async def test_a_backup_too_large_for_the_targets_plan_is_refused_naming_both(world, engine):
    big = 300 * 1024 * 1024 // BYTES_PER_KEY  # ~300 MiB: more than a 256 MiB plan holds
    source = await a_running_addon(world, engine, plan="redis-starter-512", keys={"0": big}, expiring={})
    backup = await engine.backups.create(APP, source.name)
    assert (await finished(engine, backup))["status"] == "succeeded"
    target = await a_running_addon(world, engine, plan="redis-starter-256")

    with pytest.raises(DatasetTooLarge, match=f"of addon {source.name} held .* {target.name}'s plan redis-starter-256"):
        await engine.backups.restore(APP, target.name, backup["backup_id"])
    assert [o["kind"] for o in await engine.operations(target.name)] == ["provision"]
    assert (await world.addon(target.name)).status == "running"


async def test_a_starter_backup_restored_into_a_business_addon_of_another_app(world, engine):
    source = await a_running_addon(world, engine)
    backup = await engine.backups.create(APP, source.name)
    assert (await finished(engine, backup))["status"] == "succeeded"
    added = await engine.add_addon(OTHER_APP, "redis-business-256")
    assert (await finished(engine, added))["status"] == "succeeded"

    started = await engine.backups.restore(OTHER_APP, added["addon"], backup["backup_id"])
    assert (started["from_addon"], started["from_app"]) == (source.name, APP)
    assert (await finished(engine, started))["status"] == "succeeded"
    primary = (await cluster_of(world.events, added["addon"])).primary_node
    server = world.runtime.server(primary["host"], primary["container"])
    assert {db: n for db, n in server.keys.items() if n} == world.key_counts(source)
