"""Backup decisions (engine/backup_saga.py) through a real Engine over the in-memory ports: the
node's data file archived with its checksum and key counts, or nothing left behind."""

from __future__ import annotations

import hashlib
from uuid import UUID

from domain.redis_config import RDB_SAVE_RULES
from tests.unit.engine_fakes import APP, SOME_EXPIRING, SOME_KEYS, a_running_addon, finished
from tests.unit.fakes.docker import untar
from tests.unit.fakes.redis import decode_dump

SAVE_RULES = " ".join(RDB_SAVE_RULES)


async def test_a_backup_stores_the_nodes_data_file_with_its_checksum_and_key_counts(world, engine):
    addon = await a_running_addon(world, engine)

    started = await engine.backups.create(APP, addon.name)
    operation = await finished(engine, started)

    assert operation["status"] == "succeeded"
    backup = await world.events.get(UUID(started["backup_id"]))
    assert backup.status == "done"
    archive = world.backups.archives[backup.archive_key]
    assert (backup.size, backup.sha256, backup.location) == (len(archive), hashlib.sha256(archive).hexdigest(),
                                                             backup.archive_key)
    keys, expiring = decode_dump(untar(archive)["dump.rdb"])
    assert (keys, expiring) == (SOME_KEYS, SOME_EXPIRING)
    assert {db: n for db, n in backup.snapshot["keys"].items() if n} == SOME_KEYS
    assert (await world.addon(addon.name)).operation_id is None  # free for the next operation
    assert world.runtime.server(addon.host, addon.container).config["save"] == SAVE_RULES
    [row] = await engine.backups.list(APP, addon.name)
    assert row["status"] == "done"


async def test_a_backup_whose_archive_cannot_be_stored_fails_leaving_no_archive_and_the_saves_back_on(world, engine):
    addon = await a_running_addon(world, engine)
    world.backups.fail_for_good("write_archive")

    started = await engine.backups.create(APP, addon.name)
    operation = await finished(engine, started)

    assert operation["status"] == "failed"
    backup = await world.events.get(UUID(started["backup_id"]))
    assert (backup.status, backup.failure) == ("failed", "archive: write_archive failed for good (told to)")
    assert world.backups.archives == {}
    assert world.runtime.server(addon.host, addon.container).config["save"] == SAVE_RULES
    assert (await world.addon(addon.name)).operation_id is None
    assert world.key_counts(addon) == SOME_KEYS


async def test_a_backup_whose_node_cannot_save_fails_and_frees_the_addon(world, engine):
    addon = await a_running_addon(world, engine)
    world.redis.fail_for_good("snapshot")

    started = await engine.backups.create(APP, addon.name)
    operation = await finished(engine, started)

    assert operation["status"] == "failed"
    assert (await world.events.get(UUID(started["backup_id"]))).status == "failed"
    assert (await world.addon(addon.name)).operation_id is None
    world.redis.heal()
    assert (await finished(engine, await engine.backups.create(APP, addon.name)))["status"] == "succeeded"


async def test_a_backup_retries_a_store_busy_for_now(world, engine):
    addon = await a_running_addon(world, engine)
    world.backups.fail("write_archive", times=2)

    started = await engine.backups.create(APP, addon.name)
    operation = await finished(engine, started)

    assert operation["status"] == "succeeded"
    assert len(world.backups.calls_to("write_archive")) == 3
    assert len(world.backups.archives) == 1
