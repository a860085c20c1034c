"""The safety backup of an engine upgrade (issue 13, part 4) on real Docker and real servers: a Starter
addon's upgrade from Redis 7.0.15 to Valkey 8.1.8 takes a backup of kind pre-upgrade first, which holds
the data as the old version wrote it (its RDB format), is listed with its kind (the API, the CLI's
table), is kept by the retention policy as a manual one, and restores the data into the upgraded addon.
A Sandbox addon's upgrade takes none and says why."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import datetime, timezone

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from tests.integration import data
from tests.integration.api_client import cli, session, token, url

OLD, NEW = "7.0.15", "8.1.8"


@pytest.fixture
async def server(engine):
    server = TestServer(make_app(engine))
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def cli_env(engine, server, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    monkeypatch.setenv("TZ", "Europe/Paris")


async def provisioned(engine, app: str, plan: str) -> tuple[str, str]:
    requested = await engine.add_addon(app, plan, version=OLD)
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    return requested["addon"], (await engine.environment(app))["REDIS_URL"]


async def upgraded(engine, app: str, addon: str) -> dict:
    upgrading = await engine.database_version.upgrade(app, addon, NEW)
    operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    assert (await engine.addon(app, addon))["version"] == NEW
    return operation


async def rdb_of(engine, row: dict) -> bytes:
    archive = b"".join([chunk async for chunk in engine.backups.read_archive(row)])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        return tar.extractfile("dump.rdb").read()


async def test_a_starter_upgrade_leaves_a_pre_upgrade_backup_of_the_old_version_listed_kept_and_restorable(
        engine, app_name, server, cli_env, capsys):
    addon, redis_url = await provisioned(engine, app_name, "redis-starter-256")
    known = data.expected(2_000)
    await data.write(redis_url, known)

    operation = await upgraded(engine, app_name, addon)

    [row] = await engine.backups.list(app_name, addon)
    assert (row["kind"], row["status"], row["redis_version"], row["operation_id"]) == (
        "pre-upgrade", "done", OLD, operation["id"]), row
    first = operation["steps"][0]
    assert first["name"] == "safety_backup" and row["id"] in first["detail"] and "2000 keys" in first["detail"], first
    rdb = await rdb_of(engine, row)
    assert rdb.startswith(b"REDIS0010"), rdb[:9]  # written by Redis 7.0 (RDB 10); Valkey 8.1 writes 11

    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{app_name}/addons/{addon}/backups")) as response:
            assert response.status == 200
            assert [(b["id"], b["kind"]) for b in (await response.json())["backups"]] == [(row["id"], "pre-upgrade")]
    capsys.readouterr()
    assert await cli("--app", app_name, "--addon", "redis", "backups") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["ID", "CREATED AT", "SIZE", "STATUS", "KIND"]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:-1]]
    assert [(c[0], c[3], c[4]) for c in cells] == [(row["id"], "done", "pre-upgrade")]

    await engine.backups.sweep(datetime.now(timezone.utc))
    [kept] = await engine.backups.list(app_name, addon)
    assert (kept["kept_for"], kept["expired"], kept["deleted"]) == (["pre-upgrade"], False, False)

    client = redis.from_url(redis_url)
    await client.set("written-after-the-upgrade", "x")
    await client.aclose()
    restore = await engine.backups.restore(app_name, addon, row["id"])
    assert (await engine.wait_for_operation(restore["operation_id"], timeout=240))["status"] == "succeeded"
    assert (await engine.addon(app_name, addon))["version"] == NEW  # the old file, loaded by the new version
    assert await data.read(redis_url, known) == known  # as it was before the upgrade, and nothing since


async def test_a_sandbox_upgrade_takes_no_backup_and_says_why(engine, app_name):
    addon, redis_url = await provisioned(engine, app_name, "redis-sandbox")
    known = data.expected(500)
    await data.write(redis_url, known)

    operation = await upgraded(engine, app_name, addon)

    assert operation["steps"][0]["name"] == "safety_backup"
    assert operation["steps"][0]["detail"].startswith(
        "no backup taken: a Sandbox addon has no backups; its old data is kept as a copy until the end")
    assert await engine.backups.list(app_name, addon) == []
    assert await data.read(redis_url, known) == known
