"""Backups of a Business addon on real Docker, Redis, Sentinel and HAProxy (issue 12): taken on the
replica, so that the primary never forks for one; the archive's RDB holds every key and records the
replication offset the backup says; with no replica in sync, taken on the primary and saying so; the
schedule backs Business addons up, kept by the Business retention numbers."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from uuid import UUID

from engine.rdb_header import replication_offset
from tests.integration import data
from tests.integration.business import Writer, business_addon, container, direct, eventually, nodes_by_role, primary_of
from tests.integration.test_backups import FreshServer, archive_bytes, backup_now, free_port, rdb_of


async def forks_of(node: dict, password: str) -> int:
    """How many child processes the server has forked (BGSAVE, full syncs, AOF rewrites) since it started."""
    client = direct(node, password)
    try:
        return int((await client.info("stats"))["total_forks"])
    finally:
        await client.aclose()


def offset_recorded_in(rdb_path) -> int:
    """The `repl-offset` field of an RDB file, as Redis' own redis-check-rdb reads it."""
    said = subprocess.run(["redis-check-rdb", str(rdb_path)], capture_output=True, text=True, timeout=60).stdout
    [line] = [line for line in said.splitlines() if "AUX FIELD repl-offset" in line]
    return int(line.rsplit("=", 1)[1].strip(" '"))


async def the_cluster(engine, app: str, addon: str) -> tuple[dict, dict, str]:
    nodes = await nodes_by_role(engine, app, addon)
    primary = primary_of(nodes)
    [replica] = [n for n in nodes["data"] if not n["is_primary"]]
    return primary, replica, engine.secrets.password_for(addon)


async def test_a_backup_is_taken_on_the_replica_holds_every_key_and_the_primary_does_not_fork(engine, app_name,
                                                                                           tmp_path):
    addon = await business_addon(engine, app_name)
    known = data.expected(2_000)  # strings, hashes, lists, sets, sorted sets in all 5 databases
    await data.write((await engine.environment(app_name))["REDIS_URL"], known)
    primary, replica, password = await the_cluster(engine, app_name, addon)
    forks_before = await forks_of(primary, password)

    made = await backup_now(engine, app_name)

    assert made["operation"]["status"] == "succeeded", made["operation"]
    row = made["backup"]
    assert row["taken_on"]["role"] == "replica" and row["taken_on"]["node"] == replica["id"]
    assert row["taken_on"]["offset"] >= row["taken_on"]["primary_offset"] > 0  # in sync as the save began
    assert await forks_of(primary, password) == forks_before  # the primary never forked
    (tmp_path / "dump.rdb").write_bytes(rdb_of(await archive_bytes(engine, row)))
    assert offset_recorded_in(tmp_path / "dump.rdb") == row["taken_on"]["offset"]
    async with FreshServer(tmp_path, free_port()) as url:
        assert await data.read(url, known) == known  # every key, of every type, in every database
    backup = await engine.events.get(UUID(row["id"]))
    assert {db: n for db, n in backup.snapshot["keys"].items()} == {str(db): 400 for db in range(5)}


async def test_under_writes_the_counts_recorded_are_those_of_the_file_and_acknowledged_writes_are_in_it(
        engine, app_name, tmp_path):
    """The replica's replication stream is paused with its writes for the instant of its fork: the key
    counts read then are the file's, though the app writes all along; every write acknowledged before
    the backup was asked is in it."""
    addon = await business_addon(engine, app_name)
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    try:
        await eventually(writer.wrote_more)
        acknowledged_before = list(writer.acknowledged)
        made = await backup_now(engine, app_name)
        await eventually(writer.wrote_more)  # writes went on
    finally:
        await writer.stop()

    assert made["operation"]["status"] == "succeeded", made["operation"]
    assert made["backup"]["taken_on"]["role"] == "replica", made["backup"]
    backup = await engine.events.get(UUID(made["backup"]["id"]))
    (tmp_path / "dump.rdb").write_bytes(rdb_of(await archive_bytes(engine, made["backup"])))
    async with FreshServer(tmp_path, free_port()) as url:
        client = direct({"address": "127.0.0.1", "port": int(url.rsplit(":", 1)[1])}, None)
        try:
            assert await client.dbsize() == backup.snapshot["keys"]["0"]
            present = await client.mget([f"w:{n}" for n in acknowledged_before])
            assert None not in present
            assert int(await client.get("writes")) >= len(acknowledged_before)
        finally:
            await client.aclose()
    assert len(writer.acknowledged) > len(acknowledged_before) + 5


async def test_a_valkey_9_cluster_is_backed_up_on_its_replica_under_writes_its_file_at_the_offset_recorded(
        engine, app_name):
    """Valkey writes its own RDB header (`VALKEY080`): the offset check reads it too."""
    requested = await engine.add_addon(app_name, "redis-business-256", version="9.1.2")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=240))["status"] == "succeeded"
    primary, replica, password = await the_cluster(engine, app_name, requested["addon"])
    forks_before = await forks_of(primary, password)
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    try:
        await eventually(writer.wrote_more)
        made = await backup_now(engine, app_name)
    finally:
        await writer.stop()

    assert made["operation"]["status"] == "succeeded", made["operation"]
    assert (made["backup"]["taken_on"]["role"], made["backup"]["taken_on"]["node"]) == ("replica", replica["id"])
    rdb = rdb_of(await archive_bytes(engine, made["backup"]))
    assert rdb.startswith(b"VALKEY080")
    assert replication_offset(rdb) == made["backup"]["taken_on"]["offset"]
    assert await forks_of(primary, password) == forks_before


async def test_with_the_replica_killed_the_backup_is_taken_on_the_primary_and_says_so(engine, app_name, tmp_path):
    addon = await business_addon(engine, app_name)
    known = data.expected(500)
    await data.write((await engine.environment(app_name))["REDIS_URL"], known)
    primary, replica, password = await the_cluster(engine, app_name, addon)
    await (await container(engine, replica)).kill()  # the watcher runs no round here: nothing replaces it

    async def replica_gone() -> bool:
        client = direct(primary, password)
        try:
            return (await client.info("replication"))["connected_slaves"] == 0
        finally:
            await client.aclose()

    await eventually(replica_gone)
    made = await backup_now(engine, app_name)

    assert made["operation"]["status"] == "succeeded", made["operation"]
    taken_on = made["backup"]["taken_on"]
    assert (taken_on["role"], taken_on["node"]) == ("primary", primary["id"])
    assert taken_on["note"] == "taken on the primary: no replica in sync"
    [listed] = await engine.backups.list(app_name, addon)
    assert listed["taken_on"] == taken_on
    (tmp_path / "dump.rdb").write_bytes(rdb_of(await archive_bytes(engine, made["backup"])))
    async with FreshServer(tmp_path, free_port()) as url:
        assert await data.read(url, known) == known


async def test_the_schedule_backs_up_a_business_addon_kept_by_the_business_numbers(engine, app_name):
    addon = await business_addon(engine, app_name)
    _, replica, _ = await the_cluster(engine, app_name, addon)
    await engine.backups.set_schedule(app_name, addon, "3:00", "UTC")
    night = datetime.now(timezone.utc).replace(hour=3, minute=5, second=0, microsecond=0) + timedelta(days=1)

    ticked = await engine.scheduler.tick(night)

    [started] = ticked["started"]
    assert started["addon"] == addon
    assert (await engine.wait_for_operation(started["operation_id"], timeout=120))["status"] == "succeeded"
    swept = await engine.scheduler.tick(night + timedelta(minutes=5))  # the sweep of the next tick decides
    assert swept["started"] == [] and swept["swept"]["decided"] == 1
    [row] = await engine.backups.list(app_name, addon)
    assert (row["kind"], row["tier"], row["taken_on"]["node"]) == ("scheduled", "business", replica["id"])
    assert row["kept_for"] == ["daily", "weekly", "monthly"]  # a Starter keeps no monthly backup
