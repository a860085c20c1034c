"""A Business addon, provisioned by the engine (reference, "Cluster Setup"): seven containers over
the three hosts; REDIS_URL points at the entry, never at a data node; writes through it reach both
data nodes, configured as a starter node is (5 databases, timeout 150, the plan's memory, one
`default` user) and in replication; removal leaves nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from domain.cluster import Cluster
from domain.errors import NoHostWithRoom
from engine import build
from tests.integration.business import over_tls
from tests.integration.conftest import containers_of, settings_for, volumes_of


async def eventually(check, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if result := await check():
            return result
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def test_a_business_addon_is_seven_nodes_behind_one_url_and_removal_takes_them_all(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-business-256")
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    addon = requested["addon"]
    assert [s["name"] for s in operation["steps"]][-2:] == ["wait_entry", "publish"]
    row = await engine.addon(app_name, addon)
    assert (row["plan"], row["status"]) == ("redis-business-256", "running")

    nodes = await engine.nodes(app_name, addon)
    roles = sorted(n["role"] for n in nodes)
    assert roles == ["data", "data", "proxy", "proxy", "sentinel", "sentinel", "sentinel"]
    assert all(n["state"] == "running" for n in nodes)
    for role, count in (("data", 2), ("sentinel", 3), ("proxy", 2)):
        assert len({n["host"] for n in nodes if n["role"] == role}) == count  # each group on different hosts
    data = [n for n in nodes if n["role"] == "data"]
    primary = next(n for n in data if n["is_primary"])
    replica = next(n for n in data if not n["is_primary"])

    url = (await engine.environment(app_name))["REDIS_URL"]
    entry = urlsplit(url)
    assert (entry.hostname, entry.port) not in {(n["address"], n["port"]) for n in data}  # never a data node
    client = redis.from_url(url, decode_responses=True)
    assert await client.set("order:1", "paid")
    async def replica_acknowledged() -> dict:  # replication read live from the primary (a replica acks every second)
        live = {n["id"]: n for n in await engine.nodes(app_name, addon)}
        return live if live[replica["id"]]["offset"] else None

    live = await eventually(replica_acknowledged)
    assert live[replica["id"]]["behind_bytes"] >= 0 and live[primary["id"]]["offset"] >= live[replica["id"]]["offset"]
    password = entry.password
    for node in (primary, replica):
        direct = redis.Redis(host=node["address"], port=node["port"], username="default", password=password,
                             decode_responses=True, **over_tls(node))
        assert await eventually(lambda: direct.get("order:1")) == "paid"
        config = await direct.config_get("*")
        assert (config["databases"], config["timeout"], config["maxmemory"]) == ("5", "150", str(256 * 1024 * 1024))
        assert [line.split()[:3] for line in await direct.acl_list()] == [["user", "default", "on"]]
        role = (await direct.info("replication"))["role"]
        assert role == ("master" if node is primary else "slave")
        await direct.aclose()
    await client.aclose()

    removal = await engine.remove_addon(app_name, addon)
    assert (await engine.wait_for_operation(removal["operation_id"], timeout=120))["status"] == "succeeded"
    assert await containers_of(addon) == [] and await volumes_of(addon) == []
    cluster: Cluster = await engine.events.get(Cluster.id_for(addon))
    assert cluster.live_nodes == []


async def test_a_business_cluster_the_hosts_cannot_spread_is_refused_and_nothing_is_left(home, app_name):
    two_hosts = settings_for(home)
    async with build(replace(two_hosts, hosts=two_hosts.hosts[:2])) as engine:
        with pytest.raises(NoHostWithRoom, match="the sentinel nodes go to different hosts"):
            await engine.add_addon(app_name, "redis-business-256")
        assert await engine.operations() == [] and engine.inventory.tenants() == []
        assert await engine.runtime.nodes(**{"redis-addons.app": app_name}) == []


async def test_a_business_cluster_with_no_room_for_its_data_nodes_is_refused_and_nothing_is_left(home, app_name):
    small = settings_for(home)
    async with build(replace(small, hosts=tuple(replace(h, memory_mib=300) for h in small.hosts))) as engine:
        with pytest.raises(NoHostWithRoom, match="data node: no host has room for 512 MiB"):
            await engine.add_addon(app_name, "redis-business-512")
        assert await engine.operations() == [] and engine.inventory.tenants() == []
        assert await engine.runtime.nodes(**{"redis-addons.app": app_name}) == []


async def test_writes_resume_through_the_same_url_when_the_primary_is_killed(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-business-256")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=240))["status"] == "succeeded"
    addon = requested["addon"]
    url = (await engine.environment(app_name))["REDIS_URL"]
    nodes = await engine.nodes(app_name, addon)
    primary = next(n for n in nodes if n["role"] == "data" and n["is_primary"])
    replica = next(n for n in nodes if n["role"] == "data" and not n["is_primary"])
    client = redis.from_url(url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
    await client.set("before", "1")
    direct = redis.Redis(host=replica["address"], port=replica["port"], username="default",
                         password=urlsplit(url).password, decode_responses=True, **over_tls(replica))
    assert await eventually(lambda: direct.get("before")) == "1"
    await (await engine.runtime.client(primary["host"]).containers.get(primary["container"])).kill()

    changes = []

    async def written() -> bool:
        changes.extend(await engine.watcher.failovers.look())  # a watcher round (driven here: tests set no interval)
        try:
            return await client.incr("after") >= 1
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        except redis.ResponseError as refused:  # NOREPLICAS until the engine has lowered the requirement
            assert "NOREPLICAS" in str(refused)
            return False

    assert await eventually(written, timeout=30)  # the same URL: the entry now sends it to the promoted replica
    assert (await direct.info("replication"))["role"] == "master" and await client.get("before") == "1"
    assert (await direct.config_get("min-replicas-to-write"))["min-replicas-to-write"] == "0"  # lowered: no replica
    [change] = changes  # the failover, recorded as a fact on the Cluster
    assert (change["old"], change["new"]) == (primary["id"], replica["id"])
    await engine.follower.wait_until(await engine.events.max_position())  # the read models show it
    assert [n["id"] for n in await engine.nodes(app_name, addon) if n["is_primary"]] == [replica["id"]]
    events = [e for e in await engine.event_page(after=0, limit=1000) if e["type"] == "Cluster.PrimaryChanged"]
    assert events[-1]["data"]["new"] == replica["id"] and events[-1]["data"]["reason"] == "failover by the Sentinels"
    assert await engine.watcher.failovers.look() == []  # recorded once
    assert (await engine.addon(app_name, addon))["status"] == "degraded"  # running without a replica, and says so

    await engine.runtime.start_node(primary["host"], primary["container"])  # back: Sentinel makes it a replica

    async def redundant_again() -> bool:
        await engine.watcher.failovers.look()
        await engine.follower.wait_until(await engine.events.max_position())
        return (await engine.addon(app_name, addon))["status"] == "running"

    assert await eventually(redundant_again, timeout=60)
    assert (await direct.config_get("min-replicas-to-write"))["min-replicas-to-write"] == "1"
    await client.aclose()
    await direct.aclose()
