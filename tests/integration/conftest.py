"""Engines built on a fresh data directory, on the real Docker hosts; every container,
volume and secret a test made is removed when it ends."""

from __future__ import annotations

import secrets

import aiodocker
import pytest

from engine import Settings, build
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE


def settings_for(home, **overrides) -> Settings:
    env = {"REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE)}
    return Settings.from_env(env, **overrides)


@pytest.fixture
def app_name() -> str:
    """A fresh app per test, so tests never see each other's addons."""
    return f"it-{secrets.token_hex(4)}"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
async def engine(home, app_name):
    async with build(settings_for(home)) as running:
        yield running
    await remove_everything_of(app_name)


async def remove_everything_of(app: str) -> None:
    for host in load_hosts(HOSTS_FILE):
        docker = aiodocker.Docker(url=host.docker_url)
        try:
            for container in await docker.containers.list(all=True, filters={"label": [f"redis-addons.app={app}"]}):
                await container.delete(force=True, v=True)
            volumes = await docker.volumes.list(filters={"label": [f"redis-addons.app={app}"]})
            for volume in volumes.get("Volumes") or []:
                await (await docker.volumes.get(volume["Name"])).delete()
        finally:
            await docker.close()


async def containers_of(addon: str) -> list[dict]:
    """Every container of this addon on every host, as `docker inspect` shows it."""
    found = {}
    for host in load_hosts(HOSTS_FILE):
        docker = aiodocker.Docker(url=host.docker_url)
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
        docker = aiodocker.Docker(url=host.docker_url)
        try:
            volumes = await docker.volumes.list(filters={"label": [f"redis-addons.addon={addon}"]})
            names |= {v["Name"] for v in volumes.get("Volumes") or []}
        finally:
            await docker.close()
    return sorted(names)
