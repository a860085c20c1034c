"""Settings on a Business addon (real Docker, Redis, Sentinel and HAProxy; reference, "Persistence
Mode", "Cache Mode"): every data node takes them, live and in its redis.conf, and so does a node
that joins later or comes back. With AOF on, a write the app had acknowledged by a replica
(`WAIT 1`) survives the primary's death and the failover: replication is asynchronous, so without
`WAIT` no setting guarantees it."""

from __future__ import annotations

import io
import tarfile
from contextlib import asynccontextmanager

import redis.asyncio as redis
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from tests.integration.api_client import cli, token
from tests.integration.business import business_addon, container, direct, eventually, nodes_by_role, primary_of, watcher_round
from tests.integration.test_business_self_healing import redundant, replaced

CONF = "/etc/redis/redis.conf"


async def change(engine, app: str, addon: str, setting: str, enabled: bool = True) -> dict:
    requested = await engine.database.change(app, addon, setting, enabled)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    return operation


@asynccontextmanager
async def api_for_the_cli(engine, monkeypatch, tmp_path):
    server = TestServer(make_app(engine))
    await server.start_server()
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    try:
        yield
    finally:
        await server.close()


async def redis_conf(engine, node: dict) -> list[str]:
    """The node's redis.conf as it is on its configuration volume: what a restart reads."""
    data = b"".join([chunk async for chunk in engine.runtime.read_file(node["host"], node["container"], CONF)])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.extractfile(tar.getmembers()[0]).read().decode().splitlines()


async def config_get(node: dict, password: str, name: str) -> str:
    client = direct(node, password)
    try:
        return (await client.config_get(name))[name]
    finally:
        await client.aclose()


async def on_every_data_node(engine, nodes: list[dict], password: str, name: str, value: str) -> None:
    """Live (CONFIG GET) and in the file, on each node."""
    for node in nodes:
        assert await config_get(node, password, name) == value, node["container"]
        assert f"{name} {value}" in await redis_conf(engine, node), node["container"]


async def answers_as_a_replica(node: dict, password: str) -> bool:
    client = direct(node, password)
    try:
        return (await client.info("replication"))["role"] == "slave"
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
    finally:
        await client.aclose()


async def test_aof_and_cache_mode_go_to_both_data_nodes_and_a_restarted_node_keeps_them(engine, app_name, monkeypatch,
                                                                                         tmp_path, capsys):
    addon = await business_addon(engine, app_name)
    nodes = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(nodes), next(n for n in nodes["data"] if not n["is_primary"])
    password = engine.secrets.password_for(addon)

    async with api_for_the_cli(engine, monkeypatch, tmp_path):
        assert await cli("--app", app_name, "--addon", "redis", "settings-enable", "aof") == 0

    lines = capsys.readouterr().out.splitlines()
    [apply] = [line for line in lines if line.split()[:2] == ["apply", "done"]]
    assert f"{primary['container']} (primary)" in apply and f"{replica['container']} (replica)" in apply
    assert any(line.split()[:2] == ["verify", "done"] and "2 data nodes run with them" in line for line in lines)
    assert lines[-1] == f"-----> AOF persistence enabled on {addon}"
    await on_every_data_node(engine, nodes["data"], password, "appendonly", "yes")
    assert f"replicaof {primary['address']} {primary['port']}" in await redis_conf(engine, replica)  # its role kept
    assert not [line for line in await redis_conf(engine, primary) if line.startswith("replicaof")]
    assert (await engine.database.show(app_name, addon))["aof"] is True

    await (await container(engine, replica)).restart(timeout=10)  # SIGTERM, then started again: it reads its file
    await eventually(lambda: answers_as_a_replica(replica, password), timeout=30)
    assert await config_get(replica, password, "appendonly") == "yes"
    await eventually(lambda: redundant(engine, app_name, addon), timeout=60)

    await change(engine, app_name, addon, "cache-mode")
    await on_every_data_node(engine, nodes["data"], password, "maxmemory-policy", "allkeys-lru")
    await change(engine, app_name, addon, "cache-mode", enabled=False)
    await on_every_data_node(engine, nodes["data"], password, "maxmemory-policy", "noeviction")


async def a_cluster_with_aof(engine, app: str) -> tuple[str, dict, dict, str]:
    """A Business addon with AOF turned on: its name, primary, replica and password."""
    addon = await business_addon(engine, app)
    await change(engine, app, addon, "aof")
    nodes = await nodes_by_role(engine, app, addon)
    replica = next(n for n in nodes["data"] if not n["is_primary"])
    return addon, primary_of(nodes), replica, engine.secrets.password_for(addon)


async def test_a_write_acknowledged_by_the_replica_survives_a_kill_of_the_primary_and_the_failover(engine, app_name):
    addon, primary, replica, password = await a_cluster_with_aof(engine, app_name)
    url = (await engine.environment(app_name))["REDIS_URL"]

    client = redis.from_url(url, decode_responses=True)
    async with client.pipeline(transaction=False) as pipe:
        for i in range(1000):
            pipe.set(f"k:{i}", i)
        await pipe.execute()
    await client.set("last", "acknowledged by the replica")
    assert await client.execute_command("WAIT", 1, 5000) == 1  # the replica has every write above
    await client.aclose()

    await (await container(engine, primary)).kill()  # SIGKILL: nothing saved on the way out

    async def failed_over() -> bool:
        await watcher_round(engine)
        return primary_of(await nodes_by_role(engine, app_name, addon))["id"] == replica["id"]

    await eventually(failed_over, timeout=30, every=0.5)

    async def read_back():  # through the same URL: HAProxy follows the Sentinels to the new primary
        client = redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)
        try:
            return await client.get("last"), await client.mget([f"k:{i}" for i in range(1000)])
        except (redis.ConnectionError, redis.TimeoutError):
            return None
        finally:
            await client.aclose()

    last, keys = await eventually(read_back, timeout=30, every=0.5)
    assert last == "acknowledged by the replica" and keys == [str(i) for i in range(1000)]
    assert await config_get(replica, password, "appendonly") == "yes"  # the new primary has the setting

    await eventually(lambda: redundant(engine, app_name, addon), timeout=90)  # the old primary back, a replica
    assert await answers_as_a_replica(primary, password)
    await on_every_data_node(engine, [primary, replica], password, "appendonly", "yes")


async def test_a_replacement_data_node_comes_up_with_aof_on(engine, app_name):
    addon, primary, replica, password = await a_cluster_with_aof(engine, app_name)

    await (await container(engine, replica)).delete(force=True)  # killed and its container gone

    await replaced(engine, app_name, addon, replica)
    [new] = [n for n in (await nodes_by_role(engine, app_name, addon))["data"] if n["id"] != primary["id"]]
    assert new["id"] != replica["id"]
    await on_every_data_node(engine, [new], password, "appendonly", "yes")
    assert await answers_as_a_replica(new, password)
