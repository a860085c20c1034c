"""The safety backup (engine/safety_backup.py) called as a Business upgrade calls it, on the in-memory ports:
taken as a Business addon's scheduled and manual backups are, on the replica in sync (the primary, which
serves the app, never saves), the save rules back on every data node; when it cannot finish, undone:
marked failed, no archive left, the save rules back."""

from __future__ import annotations

import pytest

from domain.backup import Backup
from domain.catalog import PlanCatalog
from domain.operation import Operation
from engine.ports import EffectError
from engine.safety_backup import SafetyBackup
from engine.store import AggregateNotFoundError
from tests.unit.engine_fakes import SOME_EXPIRING, SOME_KEYS
from tests.unit.on_three_hosts import engine, world  # noqa: F401 (fixtures)
from tests.unit.test_saga_business_backup import SAVE_RULES, a_business_addon, archived_counts


def taker(world) -> SafetyBackup:
    return SafetyBackup(world.events, world.runtime, world.redis, world.secrets, world.backups, PlanCatalog.load())


def saves_of(world, *nodes) -> list[str]:
    return [world.runtime.server(n["host"], n["container"]).config["save"] for n in nodes]


async def test_a_business_addons_safety_backup_is_taken_on_its_replica_in_sync(world, engine):
    given = await a_business_addon(world, engine)
    addon = await world.addon(given["addon"])
    operation = Operation(kind="upgrade_cluster", addon=addon.name, app=addon.app)

    result = await taker(world).take(addon, operation)

    [backup] = result.changes
    assert (backup.id, backup.kind, backup.status, backup.operation_id) == (
        Backup.pre_upgrade_id(operation.id), "pre-upgrade", "done", str(operation.id))
    assert (backup.taken_on["node"], backup.taken_on["role"]) == (given["replica"]["id"], "replica")
    assert result.outcome == {"backup_id": str(backup.id)} and str(backup.id) in result.detail
    assert f"on replica {given['replica']['id']}" in result.detail
    assert not world.redis.calls_to("snapshot")  # the primary never saved
    assert archived_counts(world) == (SOME_KEYS, SOME_EXPIRING)
    assert saves_of(world, given["primary"], given["replica"]) == [SAVE_RULES, SAVE_RULES]


async def test_a_business_addons_safety_backup_that_cannot_be_stored_is_undone(world, engine):
    given = await a_business_addon(world, engine)
    addon = await world.addon(given["addon"])
    operation = Operation(kind="upgrade_cluster", addon=addon.name, app=addon.app)
    world.backups.fail_for_good("write_archive")
    safety = taker(world)

    with pytest.raises(EffectError, match="write_archive failed for good"):  # the saga's step fails with it
        await safety.take(addon, operation)
    undone = await safety.undo(addon, operation)
    await world.events.save(*undone.changes)

    backup = await world.events.get(Backup.pre_upgrade_id(operation.id))
    assert backup.status == "failed" and "no archive left behind" in undone.detail
    assert world.backups.archives == {}
    assert saves_of(world, given["primary"], given["replica"]) == [SAVE_RULES, SAVE_RULES]


async def test_nothing_to_undo_when_no_backup_was_recorded_or_one_was_taken_whole(world, engine):
    given = await a_business_addon(world, engine)
    addon = await world.addon(given["addon"])
    operation = Operation(kind="upgrade_cluster", addon=addon.name, app=addon.app)
    safety = taker(world)
    assert await safety.undo(addon, operation) is None
    with pytest.raises(AggregateNotFoundError):  # undo recorded none
        await world.events.get(Backup.pre_upgrade_id(operation.id))
    taken = await safety.take(addon, operation)
    await world.events.save(*taken.changes)
    assert await safety.undo(addon, operation) is None  # a whole backup is kept
    assert len(world.backups.archives) == 1
