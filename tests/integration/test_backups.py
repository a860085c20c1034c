"""Backups of real addons (reference, "Backups"): the data in a backup is the data that was in
Redis, a restore puts it back, and the schedule makes one backup a day, catching up after downtime."""

from __future__ import annotations

import asyncio
import io
import subprocess
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis.asyncio as redis

from domain.backup import Backup
from domain.errors import BackupNotDone, DatasetTooLarge, InvalidSchedule, NoBackupsOnSandbox, UnknownBackup
from engine import build
from tests.integration import data
from tests.integration.conftest import containers_of, running_addon, settings_for, volumes_of




async def backup_now(engine, app: str, addon: str = "redis") -> dict:
    requested = await engine.backups.create(app, addon)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)
    return {"operation": operation, "backup": await engine.backups.get(app, addon, requested["backup_id"])}


async def archive_bytes(engine, row: dict) -> bytes:
    return b"".join([chunk async for chunk in engine.backups.read_archive(row)])


def rdb_of(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert tar.getnames() == ["dump.rdb"]
        return tar.extractfile("dump.rdb").read()


class FreshServer:
    """A Redis server of the machine (Debian's redis-server) started on an RDB file, on loopback."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port

    async def __aenter__(self) -> str:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--dbfilename", "dump.rdb", "--databases", "5", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(200):
            try:
                if await client.ping():
                    break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        await client.aclose()
        return f"redis://127.0.0.1:{self.port}"

    async def __aexit__(self, *exc) -> None:
        self.process.terminate()  # only the process this test started, by its PID
        self.process.wait(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def url_of(engine, app) -> str:
    return (await engine.environment(app))["REDIS_URL"]


async def test_a_manual_backup_holds_exactly_the_data_that_was_in_redis(engine, app_name, tmp_path):
    addon = await running_addon(engine, app_name)
    known = data.expected(2_000)
    await data.write(await url_of(engine, app_name), known)

    made = await backup_now(engine, app_name)

    assert made["operation"]["status"] == "succeeded", made["operation"]
    row = made["backup"]
    assert row["status"] == "done" and row["kind"] == "manual" and row["addon"] == addon
    assert row["name"].endswith(f"_{addon.replace('-', '_')}.tar.gz")
    archive = await archive_bytes(engine, row)
    assert len(archive) == row["size"]
    import hashlib
    assert hashlib.sha256(archive).hexdigest() == row["sha256"]
    (tmp_path / "dump.rdb").write_bytes(rdb_of(archive))
    async with FreshServer(tmp_path, free_port()) as url:
        assert await data.read(url, known) == known


async def test_a_restore_puts_the_backup_data_back_after_it_changed(engine, app_name):
    addon = await running_addon(engine, app_name)
    url = await url_of(engine, app_name)
    known = data.expected(1_000)
    await data.write(url, known)
    backup = (await backup_now(engine, app_name))["backup"]
    client = redis.from_url(url, db=2)
    await client.flushall()
    await client.set("written-after-the-backup", "x")
    await client.aclose()
    [node_before] = await containers_of(addon)

    requested = await engine.backups.restore(app_name, addon, backup["id"])
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)

    assert operation["status"] == "succeeded", operation
    assert await url_of(engine, app_name) == url  # the app's URL does not change
    assert await data.read(url, known) == known  # every database holds exactly the backup's keys again
    client = redis.from_url(url, db=2)  # the restore closed the connections to the node it replaced
    assert await client.exists("written-after-the-backup") == 0
    await client.aclose()
    [node_after] = await containers_of(addon)
    assert node_after != node_before  # the old node and its volume are gone
    assert len(await volumes_of(addon)) == 1
    assert (await engine.addon(app_name, addon))["status"] == "running"


async def test_a_backup_that_cannot_be_stored_is_recorded_failed_with_the_reason_and_leaves_nothing(engine, app_name):
    await running_addon(engine, app_name)
    engine.settings.backups_dir.parent.mkdir(parents=True, exist_ok=True)
    engine.settings.backups_dir.write_text("not a directory")  # a broken backup disk, for real

    made = await backup_now(engine, app_name)

    assert made["operation"]["status"] == "failed"
    assert made["backup"]["status"] == "failed"
    assert "archive" in made["backup"]["failure"] and "directory" in made["backup"]["failure"].lower()
    with pytest.raises(BackupNotDone, match="failed: only a finished backup can be downloaded"):
        await engine.backups.downloadable(app_name, "redis", made["backup"]["id"])
    with pytest.raises(BackupNotDone):
        await engine.backups.restore(app_name, "redis", made["backup"]["id"])
    engine.settings.backups_dir.unlink()
    again = await backup_now(engine, app_name)  # the addon is free again, the save rules back
    assert again["backup"]["status"] == "done"


async def test_bad_input_is_refused_with_the_rule_it_breaks_and_changes_nothing(engine, app_name):
    sandbox = await running_addon(engine, app_name, plan="redis-sandbox")
    with pytest.raises(NoBackupsOnSandbox, match="sandbox plan, which has no backups"):
        await engine.backups.create(app_name, sandbox)
    with pytest.raises(NoBackupsOnSandbox):
        await engine.backups.set_schedule(app_name, sandbox, "3", "Europe/Paris")
    assert await engine.backups.list(app_name, sandbox) == []
    with pytest.raises(UnknownBackup, match="not-an-id"):
        await engine.backups.get(app_name, sandbox, "not-an-id")
    with pytest.raises(UnknownBackup, match="has no backup"):
        await engine.backups.get(app_name, sandbox, "3f1c2e4a-0000-4000-8000-000000000000")
    with pytest.raises(UnknownBackup, match="no successful backup yet"):
        await engine.backups.latest_done(app_name, sandbox)
    starter = await running_addon(engine, app_name)
    for wrong, says in [("25", "hour is 0 to 23"), ("4:00 Mars/Olympus", "unknown time zone"), ("at four", "invalid schedule")]:
        with pytest.raises(InvalidSchedule, match=says):
            await engine.backups.set_schedule(app_name, starter, wrong, "Europe/Paris")
    assert (await engine.backups.schedule(app_name, starter))["description"].startswith("daily at 1:00 ")
    with pytest.raises(Exception, match="2 Redis addons"):
        await engine.backups.create(app_name, "redis")


async def test_the_schedule_is_stored_with_its_time_zone_and_described_in_cet(engine, app_name):
    addon = await running_addon(engine, app_name)
    shown = await engine.backups.set_schedule(app_name, "redis", "4:00 UTC", "America/New_York")
    assert (shown["hour"], shown["zone"]) == (4, "UTC")
    assert shown["description"] in ("daily at 5:00 CET", "daily at 6:00 CEST")
    local = await engine.backups.set_schedule(app_name, addon, "3", "America/New_York")
    assert (local["hour"], local["minute"], local["zone"]) == (3, 0, "America/New_York")


async def test_one_scheduled_backup_a_day_and_a_missed_day_runs_after_a_restart(engine, app_name, home):
    addon = await running_addon(engine, app_name)
    created = datetime.now(timezone.utc)
    night = lambda days: datetime.combine((created + timedelta(days=days)).date(), datetime.min.time(),  # noqa: E731
                                          timezone.utc) + timedelta(hours=3)  # 4:00 or 5:00 in Paris

    first = await engine.scheduler.tick(night(1))
    assert [b["addon"] for b in first["started"]] == [addon]
    await engine.wait_for_operation(first["started"][0]["operation_id"], timeout=60)
    assert (await engine.scheduler.tick(night(1) + timedelta(hours=5)))["started"] == []  # same day: not twice
    await engine.stop()

    async with build(settings_for(home)) as restarted:  # down for three nights
        caught_up = await restarted.scheduler.tick(night(4))
        assert len(caught_up["started"]) == 1  # the latest missed day only, at once
        await restarted.wait_for_operation(caught_up["started"][0]["operation_id"], timeout=60)
        rows = await restarted.backups.list(app_name, addon)
        assert [r["kind"] for r in rows] == ["scheduled", "scheduled"]
        assert all(r["status"] == "done" for r in rows)
        assert rows[0]["id"] == str(Backup.scheduled_id(addon, night(4).date()))
        assert (await restarted.scheduler.tick(night(4) + timedelta(minutes=1)))["started"] == []



async def test_the_sweep_keeps_the_ten_latest_manual_backups_of_a_starter_addon_and_deletes_the_archive_of_the_rest(engine, app_name):
    addon = await running_addon(engine, app_name)
    made = [(await backup_now(engine, app_name))["backup"] for _ in range(11)]
    oldest = made[0]

    swept = await engine.scheduler.tick()

    assert swept["swept"] == {"decided": 11, "deleted": 1}
    rows = await engine.backups.list(app_name, addon)
    assert [r["id"] for r in rows] == [b["id"] for b in reversed(made[1:])]
    assert all(r["kept_for"] == ["manual"] for r in rows)
    assert not (engine.settings.backups_dir / oldest["location"]).exists()
    with pytest.raises(BackupNotDone, match="deleted by the retention policy"):
        await engine.backups.downloadable(app_name, addon, oldest["id"])
    assert (await engine.scheduler.tick())["swept"] == {"decided": 0, "deleted": 0}  # decisions are recorded once


async def test_the_backups_of_a_removed_addon_stay_listed_and_downloadable(engine, app_name):
    addon = await running_addon(engine, app_name)
    backup = (await backup_now(engine, app_name))["backup"]
    removal = await engine.remove_addon(app_name, addon)
    await engine.wait_for_operation(removal["operation_id"], timeout=60)

    await engine.scheduler.tick()

    [row] = await engine.backups.list(app_name, addon)
    assert row["id"] == backup["id"] and row["kept_for"] == ["manual"]
    assert await archive_bytes(engine, await engine.backups.downloadable(app_name, addon, backup["id"]))
    with pytest.raises(Exception, match="removed"):
        await engine.backups.create(app_name, addon)


async def test_a_backup_larger_than_the_plan_is_not_restored_into_it(engine, app_name):
    addon = await running_addon(engine, app_name, plan="redis-starter-512")
    client = redis.from_url(await url_of(engine, app_name), socket_timeout=120)  # 300 MB sent: past redis-py's 5 s on a loaded machine
    async with client.pipeline(transaction=False) as pipe:
        for i in range(600):
            pipe.set(f"blob:{i}", b"x" * 500_000)  # ~300 MB: more than a 256 MiB plan holds
        await pipe.execute()
    await client.aclose()
    backup = (await backup_now(engine, app_name))["backup"]
    await (client := redis.from_url(await url_of(engine, app_name))).flushall()
    await client.aclose()
    down = await engine.change_plan(app_name, addon, "redis-starter-256")
    assert (await engine.wait_for_operation(down["operation_id"], timeout=120))["status"] == "succeeded"

    with pytest.raises(DatasetTooLarge, match="change to a larger plan first"):
        await engine.backups.restore(app_name, addon, backup["id"])
    assert [op["kind"] for op in await engine.operations(addon)][-1] == "change_plan"  # nothing started


async def test_the_sweep_leaves_alone_a_backup_being_restored(engine, app_name):
    addon = await running_addon(engine, app_name)
    made = [(await backup_now(engine, app_name))["backup"] for _ in range(11)]
    restore = await engine.backups.restore(app_name, addon, made[0]["id"])  # the one the policy expires

    swept = await engine.scheduler.tick()

    assert swept["swept"]["deleted"] == 0
    assert (await engine.wait_for_operation(restore["operation_id"], timeout=60))["status"] == "succeeded"
    assert (await engine.scheduler.tick())["swept"]["deleted"] == 1  # once restored, it goes
