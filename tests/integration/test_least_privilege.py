"""Every container the engine runs — a Starter's node, a Business cluster's data nodes, Sentinels and
HAProxy — runs with least privilege (README, "What runs with which privileges"): as `docker inspect`
shows it (a non-root user, a read-only root filesystem, no capability, no new privileges, a pids
limit, no swap) and as a user would notice it: every process is non-root, a write to / fails, and
the servers still save (BGSAVE, an AOF, CONFIG REWRITE; Sentinel rewriting its file)."""

from __future__ import annotations

import asyncio
import io
import secrets
import tarfile

import pytest
import redis.asyncio as redis

from domain.addon import Addon
from engine import build
from engine.ports import NodeSpec
from engine.cluster_provisioning import sentinel_secret
from tests.integration.business import business_addon, eventually, nodes_by_role, over_tls
from tests.integration.conftest import containers_of, remove_everything_of, running_addon, settings_for

STARTER_APP, BUSINESS_APP, ADOPTED_APP = (f"it-lp{kind}-{secrets.token_hex(3)}" for kind in ("s", "b", "a"))


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("least") / "home")) as running:
            yield running
    finally:
        for app in (STARTER_APP, BUSINESS_APP, ADOPTED_APP):
            await remove_everything_of(app)


@pytest.fixture(scope="module")
async def addons(engine) -> dict[str, str]:
    starter, business = await asyncio.gather(running_addon(engine, STARTER_APP), business_addon(engine, BUSINESS_APP))
    return {STARTER_APP: starter, BUSINESS_APP: business}


async def test_every_container_runs_as_non_root_read_only_without_capabilities(engine, addons):
    inspected = [info for addon in addons.values() for info in await containers_of(addon)]
    roles = sorted(info["Config"]["Labels"]["redis-addons.role"] for info in inspected)
    assert roles == ["data"] * 3 + ["proxy"] * 2 + ["sentinel"] * 3
    for info in inspected:
        name, config, host = info["Name"], info["Config"], info["HostConfig"]
        assert config["User"] and config["User"].split(":")[0] not in ("0", "root"), name
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        assert host["PidsLimit"] and host["PidsLimit"] > 0, name
        assert host["Memory"] > 0 and host["MemorySwap"] == host["Memory"], name
        assert host["Privileged"] is False and not host.get("Tmpfs"), name
        docker = engine.runtime.client(info["Config"]["Labels"]["redis-addons.host"])
        # Every process of the container, as the host's kernel sees it: none is root's.
        top = await (await docker.containers.get(info["Id"])).top(ps_args="-o pid,uid,comm")
        assert top["Titles"] == ["PID", "UID", "COMMAND"] and top["Processes"], name
        assert all(uid != "0" for _, uid, _ in top["Processes"]), (name, top["Processes"])


async def exec_output(engine, node: dict, *cmd: str) -> str:
    container = await engine.runtime.client(node["host"]).containers.get(node["container"])
    run = await container.exec(list(cmd), stdout=True, stderr=True)
    async with run.start(detach=False) as stream:
        out = b""
        while message := await stream.read_out():
            out += message.data
    return out.decode()


async def test_a_write_to_the_root_filesystem_fails_and_the_servers_still_save(engine, addons):
    password = engine.secrets.password_for(addons[STARTER_APP])
    [starter] = await engine.nodes(STARTER_APP, addons[STARTER_APP])
    business = await nodes_by_role(engine, BUSINESS_APP, addons[BUSINESS_APP])
    # redis-cli (in the image: no shell there) saves the server's RDB where it is told: not on /, on its volume.
    where = ["-h", starter["address"], "-p", str(starter["port"]), "--user", "default", "--pass", password, "--no-auth-warning"]
    refused = await exec_output(engine, starter, "/usr/local/bin/redis-cli", *where, "--rdb", "/written.rdb")
    assert "Read-only file system" in refused, refused
    assert "Transfer finished" in await exec_output(engine, starter, "/usr/local/bin/redis-cli", *where, "--rdb", "/data/copy.rdb")

    for url in ((await engine.environment(STARTER_APP))["REDIS_URL"], (await engine.environment(BUSINESS_APP))["REDIS_URL"]):
        async with redis.from_url(url, decode_responses=True) as client:
            await client.set("saved", "yes")
            assert await client.config_rewrite()  # Sentinel sends one after a failover: redis.conf is the user's
            await eventually(lambda: saved(client, "rdb_bgsave_in_progress", "rdb_last_bgsave_status"))  # a sync's
            await client.bgsave()
            await eventually(lambda: saved(client, "rdb_bgsave_in_progress", "rdb_last_bgsave_status"))
            await client.config_set("appendonly", "yes")  # an AOF, written by a child in appendonlydir
            await eventually(lambda: saved(client, "aof_rewrite_in_progress", "aof_last_bgrewrite_status"))

    sentinel = business["sentinel"][0]
    async with redis.Redis(host=sentinel["address"], port=sentinel["port"], decode_responses=True, **over_tls(sentinel),
                           password=engine.secrets.password_for(sentinel_secret(addons[BUSINESS_APP]))) as client:
        assert await client.execute_command("SENTINEL", "FLUSHCONFIG")  # its own file, rewritten


async def saved(client: redis.Redis, running: str, status: str) -> bool:
    info = await client.info("persistence")
    if info[running]:
        return False
    assert info[status] == "ok", info
    return True


async def test_a_node_made_again_on_files_a_root_server_wrote_owns_them_and_keeps_its_aof(engine):
    """An earlier release ran the server as root: its RDB, AOF directory and files are root's. A container
    made on that volume (the watcher making a lost one again) starts, loads them, appends to its AOF."""
    addon = await running_addon(engine, ADOPTED_APP)
    url = (await engine.environment(ADOPTED_APP))["REDIS_URL"]
    async with redis.from_url(url, decode_responses=True) as client:
        await client.config_set("appendonly", "yes")
        await eventually(lambda: saved(client, "aof_rewrite_in_progress", "aof_last_bgrewrite_status"))
        await client.config_rewrite()
    node = await engine.events.get(Addon.id_for(addon))
    docker = engine.runtime.client(node.host)
    info = await (await docker.containers.get(node.container)).show()
    await (await docker.containers.get(node.container)).delete(force=True)
    # The earlier release's node: the same image, volumes and configuration, run as root.
    earlier = await docker.containers.create({
        "Image": info["Config"]["Image"], "Cmd": info["Config"]["Cmd"], "User": "0:0", "Labels": info["Config"]["Labels"],
        "HostConfig": {"NetworkMode": "host", "Mounts": info["HostConfig"]["Mounts"]}}, name=node.container)
    await earlier.start()
    async with redis.from_url(url, decode_responses=True) as client:
        await eventually(lambda: answers(client))
        await client.bgrewriteaof()  # AOF base and increment files written anew, by root
        await eventually(lambda: saved(client, "aof_rewrite_in_progress", "aof_last_bgrewrite_status"))
        await client.save()
        await client.set("written by root", "1")
    assert (0, 0) in await owners(engine, node)
    await earlier.delete(force=True)

    await engine.runtime.create_node(NodeSpec(
        host=node.host, container=node.container, volume=node.volume, image=info["Config"]["Image"],
        command=info["Config"]["Cmd"], config_dir="/etc/redis", files={}, memory_bytes=info["HostConfig"]["Memory"],
        labels=info["Config"]["Labels"]))
    await engine.runtime.start_node(node.host, node.container)
    async with redis.from_url(url, decode_responses=True) as client:
        await eventually(lambda: answers(client))
        assert await client.get("written by root") == "1"
        await client.set("written by redis", "1")  # appended to the AOF root made
        assert (await client.info("persistence"))["aof_last_write_status"] == "ok"
        await client.bgrewriteaof()
        await eventually(lambda: saved(client, "aof_rewrite_in_progress", "aof_last_bgrewrite_status"))
    assert await owners(engine, node) == {(999, 999)}


async def owners(engine, node) -> set[tuple[int, int]]:
    tar = b"".join([chunk async for chunk in engine.runtime.read_file(node.host, node.container, "/data")])
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {(member.uid, member.gid) for member in archive}


async def answers(client: redis.Redis) -> bool:
    try:
        return await client.ping()
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False
