"""The Sentinel and HAProxy images `make setup` builds (scripts/component_images.py), on every real
Docker host: what they record being made of is what is installed here now, and they run as a Business
cluster will run them: host networking on the host's 127.x address, a non-root user, a read-only root
filesystem, no tmpfs, and their configuration on a volume. Sentinel rewrites its file there (after a
`SENTINEL MONITOR` of a real node made from the engine image) and a new container on that volume
takes up where the old one stopped; HAProxy forwards clients to a real node, and its documented
Redis check (AUTH, PING, role:master) runs in the image.

Every container and volume a test makes carries the test's app label and is removed at its end."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import os
import re
import secrets
import socket
import subprocess
import tarfile
from pathlib import Path

import aiodocker
import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

from domain.catalog import ComponentCatalog, VersionCatalog
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration.conftest import docker_of, remove_everything_of

COMPONENTS = ComponentCatalog.load()
SENTINEL, HAPROXY = COMPONENTS.get("sentinel"), COMPONENTS.get("haproxy")
NODE_IMAGE = VersionCatalog.load().default.image  # a real data node, from the default engine image
HOSTS = load_hosts(HOSTS_FILE.with_name("hosts.json"))  # the first stream's: its ids must be the same on every worker


@functools.cache
def dpkg_version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], text=True, capture_output=True,
                          check=True).stdout


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def config_tar(name: str, text: str, uid: int, gid: int, mode: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        data = text.encode()
        info.size, info.uid, info.gid, info.mode = len(data), uid, gid, mode
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def archive(docker: aiodocker.Docker, container: str, path: str) -> tarfile.TarFile:
    """The container's files under `path` (its volumes included), as the archive API gives them."""
    async with docker._query(f"containers/{container}/archive", params={"path": path},
                             headers={"Accept-Encoding": "identity"}) as response:
        return tarfile.open(fileobj=io.BytesIO(await response.read()))


async def file_of(docker, container: str, path: str) -> tuple[str, int]:
    """(text, owner uid) of one file of a container."""
    tar = await archive(docker, container, path)
    member = tar.next()
    return tar.extractfile(member).read().decode(), member.uid


def process_uid(pid: int) -> int:
    return int(re.search(r"^Uid:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))


async def eventually(check, what: str, timeout: float = 15):
    """Await `check()` until it returns something true; fail naming `what` and the last error."""
    deadline, last = asyncio.get_running_loop().time() + timeout, None
    while asyncio.get_running_loop().time() < deadline:
        try:
            result = await check()
            if result:
                return result
            last = result
        except (RedisConnectionError, OSError) as e:
            last = e
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s; last: {last!r}")


class Made:
    """Containers and volumes on one host, labelled with the test's app (removed by the fixture)."""

    def __init__(self, host, app: str):
        self.host, self.app = host, app
        self.docker = docker_of(host)
        self.labels = {"redis-addons.app": app}

    async def volume(self) -> str:
        name = f"{self.app}-{secrets.token_hex(3)}-config"
        await self.docker.volumes.create({"Name": name, "Labels": self.labels})
        return name

    async def container(self, image: str, *, volume: str | None = None, target: str = "", read_only_volume=False,
                        cmd: list[str] | None = None, start: bool = True, read_only: bool = True):
        """A container with host networking and, unless told otherwise, a read-only root filesystem."""
        host_config = {"NetworkMode": "host", "ReadonlyRootfs": read_only, "Memory": 256 << 20}
        if volume:
            host_config["Mounts"] = [{"Type": "volume", "Source": volume, "Target": target,
                                      "ReadOnly": read_only_volume}]
        config = {"Image": image, "Labels": self.labels, "HostConfig": host_config, **({"Cmd": cmd} if cmd else {})}
        container = await self.docker.containers.create(config, name=f"{self.app}-{secrets.token_hex(3)}")
        if start:
            await container.start()
        return container

    async def redis_node(self, password: str, *extra: str) -> int:
        """A data node from the engine image on the host's address; its port."""
        port = free_port(self.host.address)
        await self.container(NODE_IMAGE, read_only=False, cmd=["/usr/local/bin/redis-server", "--bind", self.host.address,
                                              "--port", str(port), "--requirepass", password, "--masterauth", password,
                                              "--save", "", "--appendonly", "no", *extra])
        client = redis.Redis(host=self.host.address, port=port, password=password)
        try:
            await eventually(client.ping, f"the Redis node on {self.host.address}:{port} answering")
        finally:
            await client.aclose()
        return port


@pytest.fixture
async def made(request, app_name):
    host = request.param
    made = Made(host, app_name)
    try:
        yield made
    finally:
        await made.docker.close()
        await remove_everything_of(app_name)


on_every_host = pytest.mark.parametrize("made", HOSTS, ids=[h.name for h in HOSTS], indirect=True)


async def check_runs_as_the_component_would(container, component) -> None:
    info = await container.show()
    assert info["State"]["Running"], info["State"]
    assert info["Config"]["User"] == component.user
    assert process_uid(info["State"]["Pid"]) == component.uid != 0
    assert info["HostConfig"]["ReadonlyRootfs"] is True and not info["HostConfig"].get("Tmpfs")
    assert info["HostConfig"]["NetworkMode"] == "host"


# --- what the images are made of -------------------------------------------------------------------------------


async def test_each_component_image_is_on_every_host_and_records_the_packages_installed_now():
    for host in HOSTS:
        docker = docker_of(host)
        try:
            for component in COMPONENTS:
                image = await docker.images.inspect(component.image)
                labels = image["Config"]["Labels"]
                assert (labels["redis-addons.component"], labels["redis-addons.version"]) == \
                    (component.role, component.version), host.name
                assert (labels["redis-addons.package-registry"], labels["redis-addons.package"],
                        labels["redis-addons.package-version"]) == ("debian", component.package,
                                                                    dpkg_version(component.package))
                recorded = dict(item.split("=", 1) for item in labels["redis-addons.debian-packages"].split())
                assert recorded == {name: dpkg_version(name) for name in recorded}, (host.name, component.role)
                assert {component.package, "libc6:amd64", "libssl3:amd64"} <= set(recorded)
                assert (image["Config"]["User"], labels["redis-addons.user"]) == (component.user, component.user)
                assert image["Config"]["Cmd"][-1] == component.config_path
            # the Sentinel is redis-tools' server binary: Debian's redis-sentinel ships only a symlink to it
            sentinel = (await docker.images.inspect(SENTINEL.image))["Config"]["Labels"]
            assert "redis-tools" in sentinel["redis-addons.debian-packages"]
            assert "redis-addons.engine" not in sentinel
        finally:
            await docker.close()


@on_every_host
async def test_each_component_image_holds_the_very_files_of_its_packages_and_its_user(made):
    for component in COMPONENTS:
        container = await made.container(component.image, start=False)
        tar = await archive(made.docker, container.id, "/")
        members = {"/" + m.name.strip("/"): m for m in tar.getmembers()}
        content = {name: tar.extractfile(m).read() for name, m in members.items() if m.isfile()}
        info = json.loads(content["/etc/redis-addons/image.json"])
        assert info["labels"]["redis-addons.package-version"] == dpkg_version(component.package)
        for image_path, host_path in info["files"].items():
            assert sha256(content[image_path]) == sha256(Path(os.path.realpath(host_path)).read_bytes()), image_path
        assert info["libraries"]
        for library in info["libraries"]:
            assert sha256(content[library]) == sha256(Path(library).read_bytes()), library
        assert f"\n{component.role}:x:{component.uid}:{component.gid}:" in content["/etc/passwd"].decode()
        assert f"\n{component.role}:x:{component.gid}:" in content["/etc/group"].decode()
        config_dir = members[component.config_dir]
        assert config_dir.isdir() and not any(name.startswith(component.config_dir + "/") for name in members)
        owner = (component.uid, component.gid) if component.config_writable else (0, 0)
        assert (config_dir.uid, config_dir.gid) == owner, component.role
        assert not {"/bin/sh", "/usr/bin/sh", "/bin/bash"} & set(members), "no shell in the image"


# --- Sentinel ------------------------------------------------------------------------------------------------


@on_every_host
async def test_a_sentinel_runs_read_only_as_non_root_and_keeps_what_it_monitors_in_its_file_on_the_volume(made):
    address, password = made.host.address, secrets.token_hex(12)
    node_port = await made.redis_node(password)
    replica_port = await made.redis_node(password, "--replicaof", address, str(node_port),
                                         "--replica-announce-ip", address)
    sentinel_port = free_port(address)
    volume = await made.volume()
    sentinel = await made.container(SENTINEL.image, volume=volume, target=SENTINEL.config_dir, start=False)
    await sentinel.put_archive(SENTINEL.config_dir, config_tar(
        SENTINEL.config_file, f"port {sentinel_port}\nbind {address}\nsentinel announce-ip {address}\n",
        SENTINEL.uid, SENTINEL.gid, 0o600))
    await sentinel.start()
    client = redis.Redis(host=address, port=sentinel_port, decode_responses=True)
    try:
        assert await eventually(client.ping, f"the Sentinel answering PING on {address}:{sentinel_port}")
        assert (await client.info("server"))["redis_mode"] == "sentinel"
        await check_runs_as_the_component_would(sentinel, SENTINEL)

        assert await client.sentinel_monitor("shop", address, node_port, 1)
        assert await client.sentinel_set("shop", "auth-pass", password)

        async def sees_the_node_and_its_replica() -> bool:  # the replica is only known from the node's INFO
            master = await client.sentinel_master("shop")
            return master["flags"] == "master" and master["num-slaves"] == 1

        await eventually(sees_the_node_and_its_replica, "the Sentinel reading the authenticated node's INFO")
        text, owner = await file_of(made.docker, sentinel.id, SENTINEL.config_path)
        assert owner == SENTINEL.uid
        assert f"sentinel monitor shop {address} {node_port} 1" in text
        assert f"sentinel auth-pass shop {password}" in text
        assert f"sentinel known-replica shop {address} {replica_port}" in text
        myid = re.search(r"^sentinel myid (\w+)$", text, re.M).group(1)
    finally:
        await client.aclose()

    # The container goes, the volume stays: a new Sentinel on it is the same one, monitoring the same node.
    await sentinel.delete(force=True)
    again = await made.container(SENTINEL.image, volume=volume, target=SENTINEL.config_dir)
    client = redis.Redis(host=address, port=sentinel_port, decode_responses=True)
    try:
        await eventually(client.ping, "the Sentinel made again on its volume answering PING")
        master = await eventually(lambda: client.sentinel_master("shop"), "the same master again")
        assert (master["ip"], int(master["port"])) == (address, node_port)
        assert re.search(r"^sentinel myid (\w+)$", (await file_of(made.docker, again.id, SENTINEL.config_path))[0],
                         re.M).group(1) == myid
    finally:
        await client.aclose()


@on_every_host
async def test_a_sentinel_whose_config_volume_is_not_writable_refuses_to_start_and_says_why(made):
    """The volume is the one place it can write: mounted read-only, Sentinel stops at once."""
    volume = await made.volume()
    writer = await made.container(SENTINEL.image, volume=volume, target=SENTINEL.config_dir, start=False)
    await writer.put_archive(SENTINEL.config_dir, config_tar(
        SENTINEL.config_file, f"port {free_port(made.host.address)}\nbind {made.host.address}\n",
        SENTINEL.uid, SENTINEL.gid, 0o600))
    sentinel = await made.container(SENTINEL.image, volume=volume, target=SENTINEL.config_dir, read_only_volume=True)

    async def stopped():
        state = (await sentinel.show())["State"]
        return None if state["Running"] else state

    state = await eventually(stopped, "the Sentinel stopping on a read-only config volume")
    assert state["ExitCode"] != 0
    logs = "".join(await sentinel.log(stdout=True, stderr=True))
    assert f"Sentinel config file {SENTINEL.config_path} is not writable" in logs, logs


# --- HAProxy -------------------------------------------------------------------------------------------------


def haproxy_cfg(address: str, port: int, password: str, servers: dict[str, int]) -> str:
    """The documented Redis check: only the node answering role:master gets clients."""
    lines = ["global", "  maxconn 256", "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 30s",
             "  timeout server 30s", "  timeout check 2s", "frontend redis", f"  bind {address}:{port}",
             "  default_backend primary", "backend primary", "  option tcp-check",
             f"  tcp-check send AUTH\\ {password}\\r\\n", "  tcp-check expect string +OK",
             "  tcp-check send PING\\r\\n", "  tcp-check expect string +PONG",
             "  tcp-check send info\\ replication\\r\\n", "  tcp-check expect string role:master"]
    lines += [f"  server {name} {address}:{p} check inter 500ms fall 1 rise 1 on-marked-down shutdown-sessions"
              for name, p in servers.items()]
    return "\n".join(lines) + "\n"


@on_every_host
async def test_haproxy_runs_read_only_as_non_root_and_forwards_clients_to_the_primary_only(made):
    address, password = made.host.address, secrets.token_hex(12)
    primary = await made.redis_node(password)
    replica = await made.redis_node(password, "--replicaof", address, str(primary))
    port = free_port(address)
    volume = await made.volume()
    proxy = await made.container(HAPROXY.image, volume=volume, target=HAPROXY.config_dir, start=False)
    await proxy.put_archive(HAPROXY.config_dir, config_tar(
        HAPROXY.config_file, haproxy_cfg(address, port, password, {"primary": primary, "replica": replica}),
        0, 0, 0o644))  # root's: the proxy reads its configuration and cannot change it
    await proxy.start()

    async def node_behind_the_proxy() -> int:
        client = redis.Redis(host=address, port=port, password=password)
        try:
            assert await client.ping()  # HAProxy speaks no Redis: a PONG comes from a node
            return int((await client.info("server"))["tcp_port"])
        finally:
            await client.aclose()

    async def only_the_primary() -> bool:  # both nodes count as up until their first check
        return all([await node_behind_the_proxy() == primary for _ in range(10)])

    await eventually(only_the_primary, f"HAProxy on {address}:{port} sending every client to the primary")
    assert [await node_behind_the_proxy() for _ in range(20)] == [primary] * 20
    await check_runs_as_the_component_would(proxy, HAPROXY)
    _, owner = await file_of(made.docker, proxy.id, HAPROXY.config_path)
    assert owner == 0

    client = redis.Redis(host=address, port=port, password=password)
    try:
        assert await client.set("through-the-proxy", "yes")
    finally:
        await client.aclose()
    direct = redis.Redis(host=address, port=primary, password=password)
    try:
        assert await direct.get("through-the-proxy") == b"yes"
    finally:
        await direct.aclose()
