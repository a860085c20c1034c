"""After a plan change the app is restarted with its new environment: its Docker containers
are recreated, or its HTTP hook is called (reference: "the related app will be restarted")."""

from __future__ import annotations

import asyncio

import aiodocker
import pytest
import redis.asyncio as redis

from tests.conftest import HOSTS_FILE
from tests.integration.test_plan_change import change, url_of
from tests.integration.test_provisioning import provision
from engine.settings import load_hosts

DEMO_IMAGE = "redis-addons/demo-app:latest"


@pytest.fixture
async def host_a():
    docker = aiodocker.Docker(url=load_hosts(HOSTS_FILE)[0].docker_url)
    yield docker
    await docker.close()


@pytest.fixture
async def demo_app(host_a, app_name):
    """The demo app (examples/demo_app) as a container on host-a, labelled as the app's."""
    label = f"com.example.app={app_name}"

    async def start(url: str):
        container = await host_a.containers.create(
            {"Image": DEMO_IMAGE, "Env": [f"REDIS_URL={url}"], "Labels": {"com.example.app": app_name},
             "HostConfig": {"NetworkMode": "host"}},
            name=f"demo-{app_name}",
        )
        await container.start()
        return label

    yield start
    for container in await host_a.containers.list(all=True, filters={"label": [label]}):
        await container.delete(force=True)


async def counter(url: str) -> int:
    client = redis.from_url(url)
    try:
        return int(await client.get("demo:counter") or 0)
    finally:
        await client.aclose()


async def until(predicate, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_the_app_container_is_recreated_with_the_new_url_and_uses_it(engine, app_name, demo_app, host_a):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    old_url = await url_of(engine, app_name)
    label = await demo_app(old_url)
    await engine.register_app(app_name, restart="docker", label=label)
    await until(lambda: counter_above(old_url, 3))
    [before] = await host_a.containers.list(filters={"label": [label]})

    operation = await change(engine, app_name, addon, "redis-starter-512")

    assert operation["status"] == "succeeded", operation
    assert "recreated with the new environment" in operation["steps"][-1]["detail"]
    new_url = await url_of(engine, app_name)
    assert new_url != old_url
    [after] = await host_a.containers.list(filters={"label": [label]})
    info = await after.show()
    assert info["Name"] == f"/demo-{app_name}" and info["Id"] != before._container["Id"]
    assert f"REDIS_URL={new_url}" in info["Config"]["Env"]
    # The app really writes to the moved database: its counter grows there beyond what was carried over.
    carried = await counter(new_url)
    await until(lambda: counter_above(new_url, carried + 3))


async def counter_above(url: str, value: int) -> bool:
    return await counter(url) > value


async def test_an_http_hook_receives_the_new_environment(engine, app_name, restart_hook):
    url, received = await restart_hook(200)
    addon = await provision(engine, app_name, plan="redis-starter-256")
    await engine.register_app(app_name, restart="hook", url=url)
    operation = await change(engine, app_name, addon, "redis-starter-512")
    assert operation["status"] == "succeeded", operation
    assert received == [{"app": app_name, "environment": await engine.environment(app_name)}]
