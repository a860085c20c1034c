"""A node that dies is seen, shown `down`, and brought back on its data: killed (Docker does not
restart a killed container), its container removed, or crash-looping; each fact is recorded on
the addon's Cluster. Real Docker engines, real Redis servers, redis-py."""

from __future__ import annotations

import asyncio
import socket

import redis.asyncio as redis

from adapters.docker.runtime import config_archive
from domain.addon import Addon
from engine import build
from tests.integration.conftest import remove_everything_of, running_addon, settings_for
from tests.integration.test_settings import eventually_ping


async def saved_key(engine, app: str) -> redis.Redis:
    client = redis.from_url((await engine.environment(app))["REDIS_URL"], decode_responses=True)
    await client.set("order:1", "paid")
    await client.save()  # on disk: a node brought back "on its data" must have it
    return client


async def node_container(engine, addon: str):
    current = await engine.events.get(Addon.id_for(addon))
    return current, await engine.runtime.client(current.host).containers.get(current.container)


async def cluster_facts(engine, addon: str) -> list[str]:
    """What was observed of the addon's nodes, in order (each test's engine holds one addon)."""
    events = await engine.event_page(after=0, limit=1000)
    return [e["type"].split(".")[1] for e in events
            if e["type"].startswith("Cluster.Node") and e["type"] not in ("Cluster.NodePlaced", "Cluster.NodeStarted")]


async def test_a_killed_node_is_seen_within_seconds_and_restarted_on_its_data(home, app_name):
    async with build(settings_for(home, watch_interval_s=0.5)) as engine:
        try:
            addon = await running_addon(engine, app_name, "redis-sandbox")
            client = await saved_key(engine, app_name)
            _, container = await node_container(engine, addon)
            await container.kill()
            for _ in range(200):  # the watcher runs by itself every half second
                if (await cluster_facts(engine, addon))[-2:] == ["NodeDown", "NodeRecovered"]:
                    break
                await asyncio.sleep(0.1)
            assert (await cluster_facts(engine, addon))[-2:] == ["NodeDown", "NodeRecovered"]
            await eventually_ping(client)
            assert await client.get("order:1") == "paid"
            assert (await engine.addon(app_name, addon))["status"] == "running"
            [node] = await asyncio.to_thread(engine.views.nodes, addon)
            assert (node["state"], node["is_primary"]) == ("running", 1)
            await client.aclose()
        finally:
            await remove_everything_of(app_name)


async def test_a_node_whose_container_was_removed_is_made_again_on_its_volumes(engine, app_name):
    addon = await running_addon(engine, app_name)
    client = await saved_key(engine, app_name)
    current, container = await node_container(engine, addon)
    await container.delete(force=True)  # `docker rm -f`: the volumes stay
    [seen] = await engine.watcher.look()
    assert seen["down"] == "its container is gone" and "made again" in seen["recovered"]
    await eventually_ping(client)
    assert await client.get("order:1") == "paid"  # its data, with its password
    tls_url = (await engine.environment(app_name))["REDIS_TLS_URL"]
    ca = home_ca(engine)
    tls = redis.from_url(tls_url, ssl_ca_certs=ca, decode_responses=True)
    assert await tls.get("order:1") == "paid"  # its TLS certificate written afresh
    assert (await cluster_facts(engine, addon))[-2:] == ["NodeDown", "NodeRecovered"]
    assert await engine.watcher.look() == []  # healthy: nothing more to record
    await client.aclose()
    await tls.aclose()


async def test_a_crash_looping_node_gets_its_configuration_back(engine, app_name):
    addon = await running_addon(engine, app_name)
    client = await saved_key(engine, app_name)
    current, container = await node_container(engine, addon)
    await engine.runtime.put_files(current.host, current.container, "/etc/redis", tar_of({"redis.conf": "nonsense 1\n"}))
    await container.restart(timeout=5)
    for _ in range(100):  # Docker's restart policy makes it crash-loop
        if (await container.show())["State"]["Restarting"] or not (await container.show())["State"]["Running"]:
            break
        await asyncio.sleep(0.1)
    [seen] = await engine.watcher.look()
    assert seen["down"].startswith("its container") and seen["recovered"]
    await eventually_ping(client)
    assert await client.get("order:1") == "paid"
    assert (await engine.addon(app_name, addon))["status"] == "running"
    await client.aclose()


async def test_a_node_that_cannot_come_back_shows_down_until_it_can(engine, app_name):
    addon = await running_addon(engine, app_name)
    client = await saved_key(engine, app_name)
    current, container = await node_container(engine, addon)
    await container.kill()
    await asyncio.sleep(0.2)
    blocker = socket.socket()  # its port taken outside Docker: it cannot start there
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((current.address, current.port))
    blocker.listen()
    try:
        [seen] = await engine.watcher.look()
        assert seen["recovered"] is None
        row = await engine.addon(app_name, addon)
        assert row["status"] == "down" and "does not run" in row["failure"]
        assert [r["status"] for r in await engine.addons(app_name)] == ["down"]
    finally:
        blocker.close()
    for _ in range(100):
        seen = await engine.watcher.look()
        if seen and seen[0]["recovered"]:
            break
        await asyncio.sleep(0.2)
    assert seen and seen[0]["recovered"]
    await eventually_ping(client)
    assert await client.get("order:1") == "paid"
    assert (await engine.addon(app_name, addon))["status"] == "running"
    await client.aclose()


def home_ca(engine) -> str:
    path = engine.settings.tls_dir / "ca.pem"
    return str(path)


async def tar_of(files: dict[str, str]):
    yield config_archive(files)
