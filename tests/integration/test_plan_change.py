"""Plan change on the real local engines (reference, "Changing Plans"): the database is stopped,
restarted on a new host with the new plan's parameters, data intact."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import redis.asyncio as redis

from domain.errors import AddonBusy, DatasetTooLarge, SamePlan
from engine import build
from engine.settings import DockerHost
from tests.integration import data
from tests.integration.conftest import containers_of, remove_everything_of, settings_for, volumes_of
from tests.integration.test_provisioning import provision

MiB = 1024 * 1024


async def change(engine, app, addon, plan) -> dict:
    requested = await engine.change_plan(app, addon, plan)
    return await engine.wait_for_operation(requested["operation_id"], timeout=120)


async def url_of(engine, app) -> str:
    return (await engine.environment(app))["REDIS_URL"]


async def test_upgrade_then_downgrade_keeps_every_key_and_moves_host_each_time(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    known = data.expected(10_000)
    await data.write(await url_of(engine, app_name), known)
    before = await engine.addon(app_name, addon)
    [old_node] = await containers_of(addon)

    upgraded = await change(engine, app_name, addon, "redis-starter-512")

    assert upgraded["status"] == "succeeded", upgraded
    after = await engine.addon(app_name, addon)
    assert after["plan"] == "redis-starter-512" and after["host"] != before["host"]
    url = await url_of(engine, app_name)
    assert f"@{after['address']}:{after['port']}" in url
    assert await data.read(url, known) == known
    client = redis.from_url(url)
    assert int((await client.config_get("maxmemory"))["maxmemory"]) == 512 * MiB
    await client.aclose()
    [new_node] = await containers_of(addon)
    assert new_node["Id"] != old_node["Id"] and new_node["State"]["Running"]
    assert new_node["HostConfig"]["Memory"] >= 512 * MiB > old_node["HostConfig"]["Memory"]
    assert len(await volumes_of(addon)) == 1

    downgraded = await change(engine, app_name, addon, "redis-starter-256")

    assert downgraded["status"] == "succeeded", downgraded
    back = await engine.addon(app_name, addon)
    assert back["plan"] == "redis-starter-256" and back["host"] == before["host"]
    assert await data.read(await url_of(engine, app_name), known) == known
    assert len(await containers_of(addon)) == 1


async def test_the_operation_records_each_step_in_order(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    operation = await change(engine, app_name, addon, "redis-starter-512")
    assert [s["name"] for s in operation["steps"]] == ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"]
    assert all(s["status"] == "succeeded" for s in operation["steps"])
    [listed] = [op for op in await engine.operations(addon) if op["id"] == operation["id"]]
    assert all(s["started_at"] and s["ended_at"] for s in listed["steps"])


async def test_a_sandbox_addon_moves_to_a_paid_plan_and_back(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-sandbox")
    known = data.expected(500)
    await data.write(await url_of(engine, app_name), known)
    assert (await change(engine, app_name, addon, "redis-starter-1024"))["status"] == "succeeded"
    assert (await change(engine, app_name, addon, "redis-sandbox"))["status"] == "succeeded"
    assert (await engine.addon(app_name, addon))["plan"] == "redis-sandbox"
    assert await data.read(await url_of(engine, app_name), known) == known


async def test_a_downgrade_whose_data_does_not_fit_is_refused_before_anything_stops(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    client = redis.from_url(await url_of(engine, app_name), socket_timeout=120)  # 150 MB sent: past redis-py's 5 s on a loaded machine
    async with client.pipeline(transaction=False) as pipe:
        for i in range(150):
            pipe.set(f"blob:{i}", b"x" * MiB)
        await pipe.execute()
    await client.aclose()
    position = await engine.events.max_position()

    with pytest.raises(DatasetTooLarge) as refused:
        await engine.change_plan(app_name, addon, "redis-sandbox")

    message = str(refused.value)
    assert "MiB of memory" in message and "128 MiB" in message
    assert await engine.events.max_position() == position
    [node] = await containers_of(addon)
    assert node["State"]["Running"]
    client = redis.from_url(await url_of(engine, app_name))
    assert await client.dbsize() == 150
    await client.aclose()


async def test_one_operation_at_a_time_and_not_to_the_same_plan(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    with pytest.raises(SamePlan):
        await engine.change_plan(app_name, addon, "redis-starter-256")
    first = await engine.change_plan(app_name, addon, "redis-starter-512")
    with pytest.raises(AddonBusy):
        await engine.change_plan(app_name, addon, "redis-starter-1024")
    assert (await engine.wait_for_operation(first["operation_id"]))["status"] == "succeeded"


def hosts_where_the_new_host_cannot_start(home, port: int) -> tuple[DockerHost, ...]:
    """host-b's first port is held by a listener outside Docker (its second one is for TLS): a node placed there cannot bind.
    A node moved off host-a goes to host-b: host-b and host-c have as much memory free, and a tie goes to the first listed."""
    a, b, *others = settings_for(home).hosts
    return (a, replace(b, first_port=port, last_port=port + 1), *others)


async def test_when_the_new_host_cannot_start_the_node_the_addon_comes_back_as_it_was(home, app_name):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.2.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    settings = settings_for(home, hosts=hosts_where_the_new_host_cannot_start(home, port), step_deadline_s=5)
    try:
        async with build(settings) as engine:
            addon = await provision(engine, app_name, plan="redis-starter-256")
            known = data.expected(1000)
            await data.write(await url_of(engine, app_name), known)
            before = await engine.addon(app_name, addon)
            url = await url_of(engine, app_name)

            operation = await change(engine, app_name, addon, "redis-starter-512")

            assert operation["status"] == "failed"
            assert operation["error"].startswith("wait_ready:")
            after = await engine.addon(app_name, addon)
            assert (after["plan"], after["host"], after["port"], after["status"]) == (before["plan"], before["host"], before["port"], "running")
            assert await url_of(engine, app_name) == url
            assert await data.read(url, known) == known
            [node] = await containers_of(addon)
            assert node["State"]["Running"] and node["Config"]["Labels"]["redis-addons.host"] == before["host"]
            [listed] = [op for op in await engine.operations(addon) if op["id"] == operation["id"]]
            assert "back on" in listed["compensation"]
            assert [s["status"] for s in listed["steps"]][-3:] == ["skipped"] * 3
            client = redis.from_url(url)
            assert await client.set("after-compensation", "writes work again")
            await client.aclose()
    finally:
        blocker.close()
        await remove_everything_of(app_name)


async def test_keys_that_expire_during_the_move_do_not_fail_it(engine, app_name):
    """Caches and sessions have TTLs: a key that expires between the save and the check is not lost data."""
    addon = await provision(engine, app_name, plan="redis-starter-256")
    client = redis.from_url(await url_of(engine, app_name))
    await client.set("stays", "forever")
    async with client.pipeline(transaction=False) as pipe:
        for i in range(2_000):
            pipe.set(f"session:{i}", "x", px=300 + i)  # expiring all through the operation
        await pipe.execute()
    await client.aclose()

    moved = await change(engine, app_name, addon, "redis-starter-512")

    assert moved["status"] == "succeeded", moved
    client = redis.from_url(await url_of(engine, app_name))
    assert await client.get("stays") == b"forever"
    await client.aclose()
