"""Full and read-only disks under a real engine (issue 15, part 5): its data directory and its backup store
each on a small tmpfs of their own, filled for real. A backup meeting a full store, or one remounted read-only,
fails cleanly and the next one works once there is room; a full event store refuses commands (library, API,
CLI, the scheduler's) and loses nothing, the day's scheduled backup is made at the first tick with room, and an
operation that meets it finishes once the disk has room again, without a restart.

The event store is not remounted read-only: Linux refuses `mount -o remount,ro` while a file is open for
writing (EBUSY), and the engine keeps its SQLite files open, so a full disk is the fault it can meet while
running. The backup store holds no file open between backups: it is remounted for real. One engine, one
starter addon and one API server for the module."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import sqlite3
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from engine.settings import load_hosts
from engine.store import EventStoreUnavailable
from tests.conftest import HOSTS_FILE
from tests.integration.api_client import cli, session, url
from tests.integration.conftest import docker_of, remove_everything_of, running_addon, settings_for

RUN = secrets.token_hex(3)
APP, REFUSED_APP = f"it-disk-{RUN}", f"it-diskr-{RUN}"
TOMORROW = datetime.combine(date.today() + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=3)
BIG = {f"big:{i}": os.urandom(256 * 1024) for i in range(8)}  # 2 MiB that no compression shrinks


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)


def fill(where: Path) -> Path:
    """A file taking every byte left on the filesystem at `where` (written until ENOSPC)."""
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def truncate_wal(database: Path) -> None:
    """SQLite's write-ahead log reuses the room it already has: emptied, its next write needs new blocks.
    A read of the engine's in progress makes the checkpoint busy: it is asked again."""
    with sqlite3.connect(database, timeout=5) as db:
        for _ in range(100):
            if db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                break
            time.sleep(0.02)
    assert os.path.getsize(f"{database}-wal") == 0


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The engine's data directory on a 32 MiB tmpfs, its backup store on a 12 MiB one inside it."""
    home = tmp_path_factory.mktemp("disks") / "home"
    mount_tmpfs(home, "32m")
    try:
        mount_tmpfs(home / "backups", "12m")
        yield home
    finally:
        for mounted in (home / "backups", home):
            # Lazily: the engine's read models keep their SQLite file open until collected.
            subprocess.run(["umount", "--lazy", str(mounted)], check=False)


@pytest.fixture(scope="module")
async def engine(home):
    try:
        async with build(settings_for(home)) as running:
            yield running
    finally:
        await remove_everything_of(APP)
        await remove_everything_of(REFUSED_APP)


@pytest.fixture(scope="module")
async def server(engine):
    server = TestServer(make_app(engine))  # makes the API token now, while the disk has room
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def addon(engine):
    name = await running_addon(engine, APP)
    async with await client(engine) as redis:
        await redis.mset({**BIG, "greeting": "hello"})
    return name


async def client(engine) -> aioredis.Redis:
    return aioredis.from_url((await engine.environment(APP))["REDIS_URL"])


async def the_data_is_intact(engine) -> None:
    async with await client(engine) as redis:
        assert await redis.get("greeting") == b"hello"
        assert await redis.mget(list(BIG)) == list(BIG.values())


async def save_rules(engine) -> str:
    async with await client(engine) as redis:
        return (await redis.config_get("save"))["save"]


async def containers_of_app(app: str) -> list:
    found = []
    for host in load_hosts(HOSTS_FILE):
        docker = docker_of(host)
        try:
            found += await docker.containers.list(all=True, filters={"label": [f"redis-addons.app={app}"]})
        finally:
            await docker.close()
    return found


async def backup_now(engine, addon: str) -> dict:
    requested = await engine.backups.create(APP, addon)
    return {**requested, "operation": await engine.wait_for_operation(requested["operation_id"], timeout=60)}


async def test_a_backup_meeting_a_full_store_fails_cleanly_and_the_next_one_works(engine, home, addon):
    """The store holds an earlier backup (and so the installation its backup key) when its disk fills."""
    assert (await backup_now(engine, addon))["operation"]["status"] == "succeeded"
    kept = sorted(p for p in (home / "backups").rglob("*") if p.is_file())
    rules = await save_rules(engine)
    filler = fill(home / "backups")
    try:
        requested = await engine.backups.create(APP, addon)
        failed = await engine.wait_for_operation(requested["operation_id"], timeout=60)
        assert failed["status"] == "failed", failed
        assert "backup store's disk is full (No space left on device)" in failed["error"]
        row = await engine.backups.get(APP, addon, requested["backup_id"])
        assert row["status"] == "failed" and "disk is full" in row["failure"]
        assert sorted(p for p in (home / "backups").rglob("*") if p.is_file()) == sorted([*kept, filler])  # no partial
        await the_data_is_intact(engine)
        assert await save_rules(engine) == rules  # the node saves as it did before the backup
    finally:
        filler.unlink()

    assert (await backup_now(engine, addon))["operation"]["status"] == "succeeded"
    rows = await engine.backups.list(APP, addon)
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    archive = b"".join([chunk async for chunk in engine.backups.store.read_tar(rows[0]["location"])])
    assert b"REDIS" in archive[:1024] and BIG["big:0"] in archive


async def test_a_backup_meeting_a_read_only_store_fails_naming_it(engine, home, addon):
    """The store holds no open file, so it can be remounted read-only under the running engine."""
    backups = home / "backups"
    kept = sorted(p for p in backups.rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", "remount,ro", str(backups)], check=True)
    try:
        requested = await engine.backups.create(APP, addon)
        failed = await engine.wait_for_operation(requested["operation_id"], timeout=60)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(backups)], check=True)
    assert failed["status"] == "failed" and "backup store's disk is read-only" in failed["error"], failed
    assert sorted(p for p in backups.rglob("*") if p.is_file()) == kept
    assert (await engine.addon(APP, addon))["status"] == "running"
    await the_data_is_intact(engine)


async def test_a_full_event_store_refuses_commands_and_loses_nothing(engine, home, addon, server, capsys,
                                                                    monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))  # the CLI's home: on a disk with room
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
    before = await engine.events.max_position()
    backups_before = await engine.backups.list(APP, addon)
    truncate_wal(home / "events.sqlite")
    filler = fill(home)
    try:
        with pytest.raises(EventStoreUnavailable, match="database or disk is full"):
            await engine.add_addon(REFUSED_APP, "redis-starter-256")
        async with session(engine) as http:
            async with http.post(url(server, f"/v1/apps/{REFUSED_APP}/addons"),
                                 json={"plan_id": "redis-starter-256"}) as response:
                assert response.status == 503, await response.text()
                error = (await response.json())["error"]
            async with http.post(url(server, f"/v1/apps/{APP}/addons/redis/backups")) as response:
                assert response.status == 503 and (await response.json())["error"]["rule"] == "event-store-unavailable"
        assert error["rule"] == "event-store-unavailable" and "database or disk is full" in error["message"]
        assert str(home) not in error["message"]  # the server's paths stay in its log
        assert await cli("--app", APP, "--addon", "redis", "backups-create") == 1
        assert capsys.readouterr().err.startswith("error: the event store cannot record anything now")
        assert await containers_of_app(REFUSED_APP) == []  # no effect for a command that was not recorded
        assert await engine.events.max_position() == before
        assert await engine.backups.list(APP, addon) == backups_before
        assert (await engine.addon(APP, addon))["status"] == "running"  # the addon is not left held
        failures = engine.scheduler.failures["backups"]
        assert (await engine.scheduler.tick(TOMORROW))["started"] == []  # the day's backup, due, cannot start
        assert engine.scheduler.failures["backups"] == failures + 1
    finally:
        filler.unlink()
    [started] = (await engine.scheduler.tick(TOMORROW + timedelta(minutes=1)))["started"]  # room: the next tick
    assert (await engine.wait_for_operation(started["operation_id"], timeout=60))["status"] == "succeeded"
    assert (await engine.backups.get(APP, addon, started["backup_id"]))["day"] == TOMORROW.date().isoformat()
    schedule = await engine.backups.set_schedule(APP, addon, "4:00 UTC", "UTC")  # commands work again
    assert (schedule["hour"], schedule["zone"]) == (4, "UTC")
    await the_data_is_intact(engine)


async def test_an_operation_meeting_a_full_event_store_finishes_once_there_is_room(engine, home, addon):
    """The backup's save step is held by a CLIENT PAUSE of the node while the disk fills: the step's
    success cannot be recorded; once there is room it is, without a restart, and the backup is done."""
    async with await client(engine) as redis:
        await redis.execute_command("CLIENT", "PAUSE", 2000, "ALL")
    requested = await engine.backups.create(APP, addon)  # recorded, and its first step started, while there is room
    truncate_wal(home / "events.sqlite")
    truncate_wal(home / "read-models.sqlite")
    filler = fill(home)
    try:
        await asyncio.sleep(3)  # the pause is over: the save step ended, and could not be recorded
        held = await engine.operation(requested["operation_id"])
        assert held["status"] == "running" and held["steps"][0]["status"] != "succeeded", held
    finally:
        filler.unlink()
    done = await engine.wait_for_operation(requested["operation_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert (await engine.backups.get(APP, addon, requested["backup_id"]))["status"] == "done"  # read models too
    await the_data_is_intact(engine)

