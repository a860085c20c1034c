"""Database settings applied live and proven by what a real client sees (reference, "Persistence
Mode", "Cache Mode"): a killed server keeps or loses what the mode says, cache mode evicts instead
of refusing, and every setting survives a restart of the node and a plan change."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis
from redis.exceptions import ResponseError

from domain.addon import Addon
from domain.errors import AddonBusy, SettingUnchanged, TlsNotAvailable, UnknownSetting
from tests.integration.conftest import running_addon

VALUE = b"v" * 100_000  # 100 kB


async def change(engine, app, addon, setting, enabled=True) -> dict:
    requested = await engine.database.change(app, addon, setting, enabled)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)
    assert operation["status"] == "succeeded", operation
    return operation


async def client_of(engine, app) -> redis.Redis:
    return redis.from_url((await engine.environment(app))["REDIS_URL"])


async def kill_and_start(engine, app, addon) -> None:
    """SIGKILL, as a crash would (no save on the way out), then the node started again."""
    row = await engine.addon(app, addon)
    current = await engine.events.get(Addon.id_for(addon))
    container = await engine.runtime.client(row["host"]).containers.get(current.container)
    await container.kill()
    for _ in range(100):
        if not (await container.show())["State"]["Running"]:
            break
        await asyncio.sleep(0.05)
    await engine.runtime.start_node(row["host"], current.container)


async def eventually_ping(client) -> None:
    for _ in range(200):
        try:
            await client.ping()
            return
        except (redis.ConnectionError, redis.BusyLoadingError):
            await asyncio.sleep(0.05)


async def test_with_aof_the_last_acknowledged_write_survives_a_kill(engine, app_name):
    addon = await running_addon(engine, app_name)
    await change(engine, app_name, addon, "aof")
    client = await client_of(engine, app_name)
    for i in range(500):
        await client.set(f"k{i}", i)
    await client.set("last", "acknowledged")
    await client.aclose()

    await kill_and_start(engine, app_name, addon)

    client = await client_of(engine, app_name)
    await eventually_ping(client)
    assert await client.get("last") == b"acknowledged" and await client.dbsize() == 501
    await client.aclose()


async def test_with_rdb_only_a_kill_loses_the_writes_since_the_last_snapshot(engine, app_name):
    addon = await running_addon(engine, app_name)
    client = await client_of(engine, app_name)
    await client.set("saved", "in the snapshot")
    await client.save()
    await client.set("after", "the snapshot")  # 1 write: the next snapshot is up to 15 minutes away
    await client.aclose()

    await kill_and_start(engine, app_name, addon)

    client = await client_of(engine, app_name)
    await eventually_ping(client)
    assert await client.get("saved") == b"in the snapshot"
    assert await client.get("after") is None  # the documented loss window
    await client.aclose()


async def test_cache_mode_evicts_old_keys_instead_of_refusing_writes(engine, app_name):
    addon = await running_addon(engine, app_name, plan="redis-sandbox")  # 128 MiB
    await change(engine, app_name, addon, "cache-mode")
    client = await client_of(engine, app_name)
    for i in range(2_000):  # 200 MB into 128 MiB: no write fails
        await client.set(f"k{i}", VALUE)
    # Keys were evicted to make room (which ones is LRU approximated by sampling, with a clock of
    # a second: keys written within the same second are equals), and the last write is there.
    assert await client.dbsize() < 2_000 and await client.exists("k1999") == 1
    assert int((await client.info("stats"))["evicted_keys"]) == 2_000 - await client.dbsize()
    assert (await client.config_get("maxmemory-policy"))["maxmemory-policy"] == "allkeys-lru"
    await client.aclose()


async def test_without_cache_mode_a_full_server_refuses_writes_and_keeps_its_data(engine, app_name):
    await running_addon(engine, app_name, plan="redis-sandbox")
    client = await client_of(engine, app_name)
    written = 0
    with pytest.raises(ResponseError, match="used memory > 'maxmemory'"):  # the OOM error
        for i in range(2_000):
            await client.set(f"k{i}", VALUE)
            written += 1
    assert 0 < written < 2_000
    assert await client.dbsize() == written and await client.exists("k0") == 1  # nothing evicted, still up
    await client.aclose()


async def test_settings_survive_a_restart_of_the_node_and_a_plan_change(engine, app_name):
    addon = await running_addon(engine, app_name)
    await change(engine, app_name, addon, "aof")
    await change(engine, app_name, addon, "cache-mode")
    await change(engine, app_name, addon, "rdb", enabled=False)
    wanted = {"appendonly": "yes", "maxmemory-policy": "allkeys-lru", "save": ""}

    await kill_and_start(engine, app_name, addon)
    client = await client_of(engine, app_name)
    await eventually_ping(client)
    assert {k: (await client.config_get(k))[k] for k in wanted} == wanted
    await client.aclose()

    upgrade = await engine.change_plan(app_name, addon, "redis-starter-512")
    assert (await engine.wait_for_operation(upgrade["operation_id"], timeout=120))["status"] == "succeeded"
    client = await client_of(engine, app_name)
    assert {k: (await client.config_get(k))[k] for k in wanted} == wanted
    assert (await client.config_get("maxmemory"))["maxmemory"] == str(512 * 1024 * 1024)  # the new plan's memory
    await client.aclose()
    shown = await engine.database.show(app_name, "redis")
    assert (shown["rdb"], shown["aof"], shown["cache_mode"]) == (False, True, True) and shown["warnings"] == []


async def test_bad_input_is_refused_clearly_and_changes_nothing(engine, app_name):
    addon = await running_addon(engine, app_name)
    with pytest.raises(UnknownSetting, match="the settings are rdb, aof, cache-mode, force-tls"):
        await engine.database.change(app_name, addon, "turbo", True)
    with pytest.raises(SettingUnchanged, match="RDB persistence is already on"):
        await engine.database.change(app_name, addon, "rdb", True)
    first = await engine.database.change(app_name, addon, "aof", True)
    with pytest.raises(AddonBusy):  # two changes at once: the second waits its turn
        await engine.database.change(app_name, addon, "cache-mode", True)
    await engine.wait_for_operation(first["operation_id"])
    assert [op["kind"] for op in await engine.operations(addon)] == ["provision", "change_settings"]
    requested = await engine.add_addon(app_name, "redis-starter-256", version="6.2.14")
    await engine.wait_for_operation(requested["operation_id"])
    no_tls = requested["addon"]
    with pytest.raises(TlsNotAvailable, match="the versions with TLS are: 7.0.15"):
        await engine.database.change(app_name, no_tls, "force-tls", True)
    shown = await engine.database.show(app_name, addon)
    assert shown["aof"] and not shown["cache_mode"] and shown["warnings"] == []


async def test_a_backup_restored_into_an_addon_with_aof_on_brings_its_data_back(engine, app_name):
    addon = await running_addon(engine, app_name)
    await change(engine, app_name, addon, "aof")
    client = await client_of(engine, app_name)
    await client.set("in-the-backup", "yes")
    await client.aclose()
    made = await engine.backups.create(app_name, addon)
    await engine.wait_for_operation(made["operation_id"])
    client = await client_of(engine, app_name)
    await client.flushall()
    await client.aclose()

    restore = await engine.backups.restore(app_name, addon, made["backup_id"])
    assert (await engine.wait_for_operation(restore["operation_id"], timeout=120))["status"] == "succeeded"

    client = await client_of(engine, app_name)
    assert await client.get("in-the-backup") == b"yes"
    assert (await client.config_get("appendonly"))["appendonly"] == "yes"
    await client.aclose()
    await kill_and_start(engine, app_name, addon)  # and the AOF holds it too
    client = await client_of(engine, app_name)
    await eventually_ping(client)
    assert await client.get("in-the-backup") == b"yes"
    await client.aclose()
