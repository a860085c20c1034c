"""After a plan change the app is restarted with its new environment: its Docker containers
are recreated, or its HTTP hook is called (reference: "the related app will be restarted")."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
import redis.asyncio as redis

from adapters.http.serve import serve
from domain.addon import Addon
from domain.app import App
from domain.errors import LabelMatchesDatabase, ReservedLabel, UnknownApp
from engine import build
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration.conftest import docker_of, remove_everything_of, settings_for
from tests.integration.test_plan_change import change, url_of
from tests.integration.test_provisioning import provision

DEMO_IMAGE = "redis-addons/demo-app:latest"


@pytest.fixture
async def host_a():
    docker = docker_of(load_hosts(HOSTS_FILE)[0])
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


# -- an app's restart never touches a database (issue 10) -------------------------------------


@pytest.fixture
async def victim(app_name):
    """Another app, whose database an app's restart must never touch."""
    name = f"{app_name}-other"
    yield name
    await remove_everything_of(name)


async def node_of(engine, addon: str):
    current = await engine.events.get(Addon.id_for(addon))
    return await engine.runtime.client(current.host).containers.get(current.container)


async def test_a_label_in_the_engines_namespace_is_refused_at_registration(engine, app_name, victim):
    await provision(engine, victim, plan="redis-sandbox")
    with pytest.raises(ReservedLabel, match="engine's namespace") as refused:
        await engine.register_app(app_name, restart="docker", label=f"redis-addons.app={victim}")
    assert refused.value.rule == "app-label-outside-engine-namespace"
    with pytest.raises(UnknownApp):
        await engine.app(app_name)  # nothing was recorded


async def test_a_restart_whose_label_finds_another_apps_database_leaves_it_untouched(engine, app_name, victim):
    """The attack as it was seen: an app registered (before the rule) with the other app's engine label."""
    other = await provision(engine, victim, plan="redis-sandbox")
    other_url = await url_of(engine, victim)
    client = redis.from_url(other_url)
    await client.set("mine", "untouched")
    before = await (await node_of(engine, other)).show()
    addon = await provision(engine, app_name, plan="redis-sandbox")
    await engine.events.save(App(name=app_name, restart={"kind": "docker", "label": f"redis-addons.app={victim}"}))

    operation = await change(engine, app_name, addon, "redis-starter-256")

    assert operation["status"] == "failed" and operation["steps"][-1]["name"] == "restart_app"
    assert "matches database containers the engine runs" in operation["error"]
    assert before["Name"].lstrip("/") in operation["error"]
    after = await (await node_of(engine, other)).show()
    assert after["Id"] == before["Id"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["State"]["Running"] and after["Config"]["Env"] == before["Config"]["Env"]
    assert not any(line.startswith("REDIS_URL=") for line in after["Config"]["Env"] or [])
    assert await client.get("mine") == b"untouched"  # the same connection: the server never went away
    await client.aclose()
    assert await url_of(engine, app_name) != other_url  # the app itself did move


async def test_a_label_of_the_apps_choosing_that_finds_a_database_is_refused_and_restarts_nothing(
        engine, app_name, demo_app, host_a):
    addon = await provision(engine, app_name, plan="redis-sandbox")
    label = await demo_app(await url_of(engine, app_name))
    await engine.register_app(app_name, restart="docker", label=label)  # only the app's container carries it
    [app_container] = await host_a.containers.list(filters={"label": [label]})
    # A database container the engine runs that carries the app's label too (labelled so after the
    # registration: another installation's node, a node an operator made by hand).
    key, value = label.split("=", 1)
    node = await host_a.containers.create(
        {"Image": "redis-addons/redis:7.0.15", "Cmd": ["/usr/local/bin/redis-server", "--port", "0", "--unixsocket", "/redis.sock"],
         "Labels": {"redis-addons.addon": f"{app_name}-0000", "redis-addons.app": app_name, "redis-addons.role": "data",
                    key: value},
         "HostConfig": {"NetworkMode": "host"}},
        name=f"redis-addons-{app_name}-0000-labelled")
    await node.start()
    started = (await node.show())["State"]["StartedAt"]

    operation = await change(engine, app_name, addon, "redis-starter-256")

    assert operation["status"] == "failed" and operation["steps"][-1]["name"] == "restart_app"
    assert f"redis-addons-{app_name}-0000-labelled on host-a" in operation["error"]
    shown = await node.show()
    assert shown["State"]["Running"] and shown["State"]["StartedAt"] == started
    assert not any(line.startswith("REDIS_URL=") for line in shown["Config"]["Env"] or [])
    # Every host was looked at before anything was touched: the app's own container was not recreated either.
    still = await (await host_a.containers.get(f"demo-{app_name}")).show()
    assert still["Id"] == app_container._container["Id"] and still["State"]["Running"]

    # Registered now, the same label is refused, naming the node; the method registered before stays.
    await engine.register_app(app_name, restart="hook", url="http://127.0.0.1:9/")
    with pytest.raises(LabelMatchesDatabase, match=f"redis-addons-{app_name}-0000-labelled on host-a") as refused:
        await engine.register_app(app_name, restart="docker", label=label)
    assert (refused.value.rule, refused.value.status) == ("restart-only-the-apps-own-containers", 409)
    assert (await engine.app(app_name))["restart"] == {"kind": "hook", "url": "http://127.0.0.1:9/"}


async def test_a_hook_at_the_engines_own_api_is_refused_by_the_served_api(home, app_name):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = build(settings_for(home, api_port=port))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(engine, stop=stop))
    try:
        async with asyncio.timeout(20):
            while not engine.settings.home.joinpath("api-url").exists():
                await asyncio.sleep(0.05)
        token = engine.settings.token_file.read_text().strip()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for host in ("127.0.0.1", "localhost"):
                hook = f"http://{host}:{port}/v1/apps"
                async with http.post(f"http://127.0.0.1:{port}/v1/apps",
                                     json={"name": app_name, "restart": {"kind": "hook", "url": hook}}) as response:
                    body = await response.json()
                assert response.status == 400, body
                assert body["error"]["rule"] == "hook-not-the-engine-api" and "engine's own API" in body["error"]["message"]
            async with http.post(f"http://127.0.0.1:{port}/v1/apps", json={
                    "name": app_name, "restart": {"kind": "hook", "url": f"http://127.0.0.1:{port + 1}/restart"}}) as response:
                assert response.status == 201, await response.text()  # another port on loopback is the app's
    finally:
        stop.set()
        await asyncio.gather(serving, return_exceptions=True)
