"""Engines built on a fresh data directory, on the real Docker hosts; every container,
volume and secret a test made is removed when it ends."""

from __future__ import annotations

import secrets
import socket
from dataclasses import replace

import aiodocker
import pytest

from adapters.docker.connection import docker_client
from engine import Settings, build
from engine.settings import DockerHost, load_hosts
from tests.conftest import HOSTS_FILE


def settings_for(home, **overrides) -> Settings:
    # The scheduler is off: tests that need it drive its ticks with a clock of their own.
    env = {"REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE), "REDIS_ADDONS_SCHEDULER_TICK": "0",
           "REDIS_ADDONS_WATCH_INTERVAL": "0", "REDIS_ADDONS_STATS_INTERVAL": "0"}
    return Settings.from_env(env, **overrides)


@pytest.fixture
def app_name() -> str:
    """A fresh app per test, so tests never see each other's addons."""
    return f"it-{secrets.token_hex(4)}"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
async def engine(request, home, app_name):
    """An engine on the real hosts; `indirect` parametrization with "new-host-cannot-start" gives
    one where host-b's first port is held by a listener outside Docker (its second one is for TLS), so a node moved there
    cannot start (a real failure, found within a 3 s step deadline). A node moved off host-a goes to host-b: host-b
    and host-c have as much memory free, and a tie goes to the host listed first."""
    blocker = None
    settings = settings_for(home)
    if getattr(request, "param", None) == "new-host-cannot-start":
        blocker = socket.socket()
        blocker.bind((settings.hosts[1].address, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        a, b, *others = settings.hosts
        settings = settings_for(home, step_deadline_s=3,
                                hosts=(a, replace(b, first_port=port, last_port=port + 1), *others))
    try:
        async with build(settings) as running:
            yield running
    finally:
        if blocker:
            blocker.close()
        await remove_everything_of(app_name)


async def running_addon(engine, app: str, plan: str = "redis-starter-256") -> str:
    """A real addon, provisioned on the first host (each test's engine starts empty)."""
    requested = await engine.add_addon(app, plan)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=90)
    assert operation["status"] == "succeeded", operation
    return requested["addon"]


@pytest.fixture
async def restart_hook():
    """A real restart hook on loopback answering `status`; yields (url, the bodies it received)."""
    from aiohttp import web

    received: list[dict] = []
    runners = []

    async def serve(status: int = 200) -> tuple[str, list[dict]]:
        async def hook(request):
            received.append(await request.json())
            return web.json_response({"status": status}, status=status)

        server = web.Application()
        server.router.add_post("/restart", hook)
        runner = web.AppRunner(server)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/restart", received

    yield serve
    for runner in runners:
        await runner.cleanup()


def docker_of(host: DockerHost) -> aiodocker.Docker:
    """A Docker client of the host as the engine opens one: on its socket, or over TCP with its TLS files."""
    return docker_client(host)


async def remove_everything_of(app: str, hosts: tuple[DockerHost, ...] | None = None) -> None:
    """On the stream's hosts, or on `hosts` (a test that builds its engine on others)."""
    for host in hosts or load_hosts(HOSTS_FILE):
        docker = docker_of(host)
        try:
            for container in await docker.containers.list(all=True, filters={"label": [f"redis-addons.app={app}"]}):
                await container.delete(force=True, v=True)
            volumes = await docker.volumes.list(filters={"label": [f"redis-addons.app={app}"]})
            for volume in volumes.get("Volumes") or []:
                await (await docker.volumes.get(volume["Name"])).delete()
        finally:
            await docker.close()


async def containers_of(addon: str, hosts: tuple[DockerHost, ...] | None = None) -> list[dict]:
    """Every container of this addon on every host (the stream's, or `hosts`), as `docker inspect` shows it."""
    found = {}
    for host in hosts or load_hosts(HOSTS_FILE):
        docker = docker_of(host)
        try:
            for container in await docker.containers.list(all=True, filters={"label": [f"redis-addons.addon={addon}"]}):
                info = await container.show()
                found[info["Id"]] = info
        finally:
            await docker.close()
    return list(found.values())


async def volumes_of(addon: str) -> list[str]:
    names = set()
    for host in load_hosts(HOSTS_FILE):
        docker = docker_of(host)
        try:
            volumes = await docker.volumes.list(filters={"label": [f"redis-addons.addon={addon}"]})
            names |= {v["Name"] for v in volumes.get("Volumes") or []}
        finally:
            await docker.close()
    return sorted(names)
