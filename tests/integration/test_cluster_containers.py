"""A Business cluster's seven containers on the three Docker hosts — two data nodes, three
Sentinels, two HAProxy bound to one entry address — made by the engine's runtime from the
engine's configuration and images: writes through the entry reach both data nodes; a killed
primary is replaced and the entry follows; a killed HAProxy leaves the other serving the same
address. (The saga that provisions them comes next: this proves the pieces it will use.)"""

from __future__ import annotations

import asyncio
import secrets as tokens
from uuid import uuid4

import pytest
import redis.asyncio as redis

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.catalog import ComponentCatalog
from domain.cluster import node_record
from domain.cluster_config import MASTER_NAME, Address
from domain.placement import cluster_requests, place_nodes
from engine.cluster_nodes import data_node_spec, proxy_spec, sentinel_spec

ROLES = ["data", "data", "sentinel", "sentinel", "sentinel", "proxy", "proxy"]


class Containers:
    def __init__(self, engine, app: str, in_use: frozenset):
        self.engine, self.app = engine, app
        self.password, self.sentinel_password = tokens.token_urlsafe(24), tokens.token_urlsafe(24)
        name = f"{app}-0001"
        hosts = [h.as_domain() for h in engine.settings.hosts]
        placed = place_nodes(cluster_requests(2, 3, 2, 256, tls=False), hosts, engine.inventory.tenants(), in_use)
        self.nodes = []
        for i, (role, where) in enumerate(zip(ROLES, placed)):
            container = f"redis-addons-{name}-{role}{i}"
            memory = 256 if role == "data" else 32
            self.nodes.append(node_record(role, where.host, where.address, where.port, container, f"{container}-data",
                                          memory, "7.0.15"))
        self.data, self.sentinels, self.proxies = self.nodes[:2], self.nodes[2:5], self.nodes[5:]
        self.entry = Address(self.proxies[0]["address"], self.proxies[0]["port"])
        first = self.data[0]
        self.addon = Addon(name=name, app=app, plan="redis-business-256", memory_mib=256, redis_version="7.0.15",
                           host=first["host"], address=self.entry.address, port=self.entry.port,
                           container=first["container"], volume=first["volume"], operation_id=uuid4(),
                           settings=DEFAULT_SETTINGS)

    async def start(self) -> None:
        components = ComponentCatalog.load()
        primary, replica = self.data
        specs = [data_node_spec(self.addon, primary, None, "test", self.password, self.engine.versions),
                 data_node_spec(self.addon, replica, primary, "test", self.password, self.engine.versions)]
        specs += [sentinel_spec(self.addon, s, primary, components.get("sentinel"), "test", self.password,
                                self.sentinel_password) for s in self.sentinels]
        specs += [proxy_spec(self.addon, p, self.entry, self.data, self.sentinels, components.get("haproxy"), "test",
                             self.password, self.sentinel_password) for p in self.proxies]
        for spec in specs:
            await self.engine.runtime.create_node(spec)
        for node in self.nodes:
            await self.engine.runtime.start_node(node["host"], node["container"])

    def client(self, node: Address | dict) -> redis.Redis:
        where = node if isinstance(node, Address) else Address(node["address"], node["port"])
        return redis.Redis(host=where.address, port=where.port, username="default", password=self.password,
                           socket_timeout=1, socket_connect_timeout=1)

    def sentinel(self, node: dict) -> redis.Redis:
        return redis.Redis(host=node["address"], port=node["port"], password=self.sentinel_password,
                           decode_responses=True, socket_timeout=1)

    async def kill(self, node: dict) -> None:
        container = await self.engine.runtime.client(node["host"]).containers.get(node["container"])
        await container.kill()


@pytest.fixture
async def cluster(engine, app_name):
    containers = Containers(engine, app_name, await engine.runtime.ports_in_use())
    await containers.start()
    yield containers  # the engine fixture removes every container and volume labelled with the app


async def eventually(check, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if result := await check():
                return result
        except (redis.RedisError, OSError):
            pass
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def served_port(cluster: Containers) -> int:
    async with cluster.client(cluster.entry) as client:
        return int((await client.config_get("port"))["port"])


async def sentinels_ready(cluster: Containers) -> bool:
    for node in cluster.sentinels:
        async with cluster.sentinel(node) as sentinel:
            replicas = await sentinel.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
            if len(await sentinel.sentinel_sentinels(MASTER_NAME)) != 2 or len(replicas) != 1:
                return False
    return True


async def test_the_seven_containers_spread_over_three_hosts_and_writes_reach_both_data_nodes(cluster):
    hosts = {role: {n["host"] for n in cluster.nodes if n["role"] == role} for role in ("data", "sentinel", "proxy")}
    assert (len(hosts["data"]), len(hosts["sentinel"]), len(hosts["proxy"])) == (2, 3, 2)
    async with cluster.client(cluster.entry) as entry:
        assert await eventually(lambda: entry.set("order:1", "paid"))
    assert await served_port(cluster) == cluster.data[0]["port"]
    async with cluster.client(cluster.data[1]) as replica:
        assert await eventually(lambda: replica.get("order:1")) == b"paid"
        assert (await replica.config_get("maxmemory"))["maxmemory"] == str(256 * 1024 * 1024)
        assert (await replica.config_get("databases"))["databases"] == "5"
        assert (await replica.acl_list())[0].startswith("user default on")
    for node in cluster.sentinels + cluster.proxies:  # components run as their own user, read-only
        info = await (await cluster.engine.runtime.client(node["host"]).containers.get(node["container"])).show()
        assert info["Config"]["User"] == "999:999" and info["HostConfig"]["ReadonlyRootfs"] is True


async def test_a_killed_primary_is_replaced_and_the_entry_follows(cluster):
    async with cluster.client(cluster.entry) as entry:
        assert await eventually(lambda: entry.set("before", "1"))
    async with cluster.client(cluster.data[1]) as replica:
        assert await eventually(lambda: replica.get("before")) == b"1"
    await eventually(lambda: sentinels_ready(cluster), timeout=30)
    await cluster.kill(cluster.data[0])

    async def promoted():
        async with cluster.sentinel(cluster.sentinels[2]) as sentinel:
            answer = await sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
        return tuple(answer) == (cluster.data[1]["address"], cluster.data[1]["port"])

    await eventually(promoted)
    await eventually(lambda: is_served(cluster, cluster.data[1]["port"]))
    async with cluster.client(cluster.data[1]) as promoted_node:
        await promoted_node.config_set("min-replicas-to-write", 0)  # what the engine does once it knows
    async with cluster.client(cluster.entry) as entry:
        assert await entry.incr("after") == 1 and await entry.get("before") == b"1"


async def test_a_killed_haproxy_leaves_the_other_serving_the_same_address(cluster):
    async with cluster.client(cluster.entry) as entry:
        assert await eventually(lambda: entry.set("k", "v"))
    await cluster.kill(cluster.proxies[0])
    for _ in range(20):  # every new connection to the same address goes to the one left
        async with cluster.client(cluster.entry) as entry:
            assert await entry.get("k") == b"v"


async def is_served(cluster: Containers, port: int) -> bool:
    return await served_port(cluster) == port
