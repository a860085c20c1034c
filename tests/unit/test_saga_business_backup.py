"""Backups of a Business addon (engine/backup_saga.py, engine/backup_source.py) through a real Engine
over the in-memory ports: taken on the replica in sync (the primary never saves), or on the primary
when no replica is in sync, saying so; the node recorded at the save is the one read and set back,
whatever a crash and a restart come between the steps; the schedule and the retention policy take
Business addons too, with the Business numbers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest

from domain.redis_config import RDB_SAVE_RULES
from engine.backup_source import ON_THE_PRIMARY
from engine.clusters import cluster_of
from tests.unit.engine_fakes import (APP, SOME_EXPIRING, SOME_KEYS, THREE_HOSTS, World, caught_up, finished, restarted,
                                     settled, shut_down, started_engine)
from tests.unit.fakes import Crash
from tests.unit.on_three_hosts import crash_at_every_call
from tests.unit.fakes.docker import untar
from tests.unit.fakes.redis import decode_dump

PLAN = "redis-business-256"
SAVE_RULES = " ".join(RDB_SAVE_RULES)


@pytest.fixture
async def world():
    world = World(hosts=THREE_HOSTS)  # a Business plan spreads each group of its cluster over three hosts
    yield world
    await shut_down(world)


@pytest.fixture
async def engine(world):
    return await started_engine(world)


async def a_business_addon(world, engine) -> dict:
    """Given: a Business addon whose primary holds some keys; its primary and replica node records."""
    operation = await finished(engine, await engine.add_addon(APP, PLAN))
    assert operation["status"] == "succeeded", operation
    cluster = await cluster_of(world.events, operation["addon"])
    primary = cluster.primary_node
    [replica] = [n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != primary["id"]]
    server = world.runtime.server(primary["host"], primary["container"])
    server.keys.update(SOME_KEYS)
    server.expires.update(SOME_EXPIRING)
    return {"addon": operation["addon"], "primary": primary, "replica": replica}


def address(node: dict) -> str:
    return f"{node['address']}:{node['port']}"


def archived_counts(world) -> tuple[dict, dict]:
    [archive] = world.backups.archives.values()
    return decode_dump(untar(archive)["dump.rdb"])


def saves_back_on(world, *nodes: dict) -> bool:
    return all(world.runtime.server(n["host"], n["container"]).config["save"] == SAVE_RULES for n in nodes)


async def test_a_business_backup_is_taken_on_the_replica_in_sync_and_records_it_with_its_offset(world, engine):
    given = await a_business_addon(world, engine)
    primary, replica = given["primary"], given["replica"]

    started = await engine.backups.create(APP, given["addon"])
    operation = await finished(engine, started)

    assert operation["status"] == "succeeded", operation
    assert archived_counts(world) == (SOME_KEYS, SOME_EXPIRING)  # the primary's data, as replicated
    assert world.redis.calls_to("snapshot") == []  # the primary never saved
    assert [(c["host"], c["container"]) for c in world.runtime.calls_to("read_file")] == [
        (replica["host"], replica["container"])]
    backup = await world.events.get(UUID(started["backup_id"]))
    offset = sum(SOME_KEYS.values())  # the fakes' replication offset
    assert backup.taken_on == {"node": replica["id"], "role": "replica", "offset": offset, "primary_offset": offset}
    assert {db: n for db, n in backup.snapshot["keys"].items() if n} == SOME_KEYS
    assert saves_back_on(world, primary, replica)
    [row] = await engine.backups.list(APP, given["addon"])
    assert (row["status"], row["taken_on"]) == ("done", backup.taken_on)
    assert f"on replica {replica['id']} at replication offset {offset}" in operation["steps"][0]["detail"]


async def test_with_the_replica_down_the_backup_is_taken_on_the_primary_and_says_so(world, engine):
    given = await a_business_addon(world, engine)
    primary, replica = given["primary"], given["replica"]
    world.runtime.kill(replica["host"], replica["container"])

    started = await engine.backups.create(APP, given["addon"])
    operation = await finished(engine, started)

    assert operation["status"] == "succeeded", operation
    assert archived_counts(world) == (SOME_KEYS, SOME_EXPIRING)
    assert [(c["host"], c["container"]) for c in world.runtime.calls_to("read_file")] == [
        (primary["host"], primary["container"])]
    [row] = await engine.backups.list(APP, given["addon"])
    assert row["taken_on"] == {"node": primary["id"], "role": "primary", "note": ON_THE_PRIMARY,
                               "why": "the primary has no replica online"}
    assert row["taken_on"]["note"] == "taken on the primary: no replica in sync"
    assert saves_back_on(world, primary)
    assert "save rules not set back" in operation["steps"][-1]["detail"]  # the replica does not run


async def test_a_replica_behind_its_primary_is_not_backed_up_the_primary_is(world, engine):
    given = await a_business_addon(world, engine)
    primary, replica = given["primary"], given["replica"]
    world.redis.lagging = frozenset({address(replica)})

    started = await engine.backups.create(APP, given["addon"])
    operation = await finished(engine, started)

    assert operation["status"] == "succeeded", operation
    [row] = await engine.backups.list(APP, given["addon"])
    offset = sum(SOME_KEYS.values())
    assert (row["taken_on"]["role"], row["taken_on"]["node"]) == ("primary", primary["id"])
    assert row["taken_on"]["why"] == (f"replica {replica['id']} at offset {offset - 1} had not reached the "
                                      f"primary's {offset} within 1 s")
    assert saves_back_on(world, primary, replica)


# -- crashes at each step boundary ------------------------------------------------------------------------

BOUNDARIES = [("Operation.Started", False)] + [
    (f"Operation.StepSucceeded({step})", before) for step in ("save", "archive", "record") for before in (True, False)]


@pytest.mark.parametrize("event, before", BOUNDARIES,
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in BOUNDARIES])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_backup_on_the_node_it_was_saved_on(
        world, engine, event, before):
    given = await a_business_addon(world, engine)
    primary, replica = given["primary"], given["replica"]

    world.events.crash_on(event, before=before)
    try:
        started = await engine.backups.create(APP, given["addon"])
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed, f"no save held {event}"
    # Meanwhile the replica falls behind: a save run again would take the primary's, but a save
    # recorded stays where it was taken.
    world.redis.lagging = frozenset({address(replica)})
    saved_before_the_crash = event != "Operation.Started" and not (event.endswith("(save)") and before)
    engine = await restarted(world, engine)
    await settled(engine)

    [operation] = [o for o in await engine.operations(given["addon"]) if o["kind"] == "backup"]
    assert operation["status"] == "succeeded", operation
    taken_on = replica if saved_before_the_crash else primary
    [row] = await asyncio.to_thread(engine.views.backups, given["addon"])
    assert (row["status"], row["taken_on"]["node"]) == ("done", taken_on["id"])
    assert {(c["host"], c["container"]) for c in world.runtime.calls_to("read_file")} == {
        (taken_on["host"], taken_on["container"])}
    assert archived_counts(world) == (SOME_KEYS, SOME_EXPIRING)
    assert len(world.backups.archives) == 1
    redone_archive = event == "Operation.StepSucceeded(archive)" and before
    assert len(world.backups.calls_to("write_archive")) == (2 if redone_archive else 1)
    assert saves_back_on(world, primary, replica)  # the replica's too, whichever node the save ended on
    assert (await world.addon(given["addon"])).operation_id is None


async def test_a_crash_as_the_engine_makes_any_call_and_a_restart_finish_the_backup():
    """Between step boundaries too: the engine dies as it makes its Nth call to a port (before that call
    has any effect), for every N until the backup finishes without meeting a crash."""
    async def backing_up(engine, given: dict) -> None:
        started = await engine.backups.create(APP, given["addon"])
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)

    async def backed_up(world, engine, given: dict) -> None:
        operations = [o for o in await engine.operations(given["addon"]) if o["kind"] == "backup"]
        if operations:  # else the crash came in the command, before the operation was recorded
            assert [o["status"] for o in operations] == ["succeeded"], operations
            assert archived_counts(world) == (SOME_KEYS, SOME_EXPIRING)
        assert saves_back_on(world, given["primary"], given["replica"])
        assert (await world.addon(given["addon"])).operation_id is None

    crashed = await crash_at_every_call(a_business_addon, backing_up, backed_up)
    assert len(crashed) >= 5, crashed


async def test_a_failed_business_backup_leaves_no_archive_and_the_save_rules_back_on_both_nodes(world, engine):
    given = await a_business_addon(world, engine)
    world.backups.fail_for_good("write_archive")

    operation = await finished(engine, await engine.backups.create(APP, given["addon"]))

    assert operation["status"] == "failed"
    assert world.backups.archives == {}
    assert saves_back_on(world, given["primary"], given["replica"])
    assert (await world.addon(given["addon"])).operation_id is None


# -- the schedule and the retention policy ----------------------------------------------------------------


async def test_the_schedule_backs_up_a_business_addon_on_its_replica(world, engine):
    given = await a_business_addon(world, engine)
    await engine.backups.set_schedule(APP, given["addon"], "3:00", "UTC")
    tomorrow = datetime.now(timezone.utc).replace(hour=3, minute=30, second=0, microsecond=0) + timedelta(days=1)

    ticked = await engine.scheduler.tick(tomorrow)

    [started] = ticked["started"]
    assert (await finished(engine, started))["status"] == "succeeded"
    [row] = await engine.backups.list(APP, given["addon"])
    assert (row["kind"], row["day"], row["taken_on"]["node"]) == ("scheduled", tomorrow.date().isoformat(),
                                                                  given["replica"]["id"])
    assert (await engine.scheduler.tick(tomorrow + timedelta(hours=1)))["started"] == []  # one a day


async def test_the_sweep_keeps_more_manual_backups_of_a_business_addon_than_of_a_starter(world, engine):
    """Business keeps 50 manual backups where Starter keeps 10: eleven are all kept."""
    given = await a_business_addon(world, engine)
    for _ in range(11):
        assert (await finished(engine, await engine.backups.create(APP, given["addon"])))["status"] == "succeeded"

    swept = await engine.scheduler.tick()

    assert swept["swept"] == {"decided": 11, "deleted": 0}
    rows = await engine.backups.list(APP, given["addon"])
    assert len(rows) == 11 and all(r["kept_for"] == ["manual"] and r["tier"] == "business" for r in rows)


async def test_the_schedule_backs_up_a_degraded_business_addon_on_its_primary(world, engine):
    """Its replica lost and not replaced yet, the addon shows `degraded`: its daily backup is still
    taken, on the primary, saying so."""
    given = await a_business_addon(world, engine)
    world.runtime.kill(given["replica"]["host"], given["replica"]["container"])
    await engine.watcher.failovers.look()  # finds no replica in sync: the cluster is recorded degraded
    await caught_up(engine)
    assert (await engine.addon(APP, given["addon"]))["status"] == "degraded"
    night = datetime.now(timezone.utc).replace(hour=3, minute=30, second=0, microsecond=0) + timedelta(days=1)

    [started] = (await engine.scheduler.tick(night))["started"]

    assert (await finished(engine, started))["status"] == "succeeded"
    [row] = await engine.backups.list(APP, given["addon"])
    assert (row["kind"], row["taken_on"]["node"], row["taken_on"]["note"]) == (
        "scheduled", given["primary"]["id"], ON_THE_PRIMARY)
