"""Draining a host on real Docker engines (the three of HOSTS_FILE, named by none of these lines): a Starter
addon and a Business addon hold keys; the host holding the cluster's primary (and its other nodes there) and
the Starter node, placed beside it, is drained. Every node ends elsewhere, through the sagas
(a same-plan move of the Starter node, a same-plan move of the cluster's data nodes, Sentinel and HAProxy
replaced), the keys read back through each addon's URL, no container of theirs is left on the host, a new
addon never lands there, and it is removed once empty. Refused: removing a host that holds nodes, adding a
host whose Docker engine does not answer (nothing recorded)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from domain.host_errors import HostNotEmpty, HostNotUsable
from tests.integration.business import business_addon, nodes_by_role, primary_of
from tests.integration.conftest import containers_of, remove_everything_of, running_addon

KEYS = {f"drain:{n}": str(n) for n in range(200)}
DRAINED_WITHIN_S = 400


async def write(url: str) -> None:
    client = redis.from_url(url, decode_responses=True, socket_timeout=5)
    try:
        await client.mset(KEYS)
    finally:
        await client.aclose()


async def read(url: str) -> dict:
    client = redis.from_url(url, decode_responses=True, socket_timeout=5)
    try:
        return dict(zip(KEYS, await client.mget(list(KEYS))))
    finally:
        await client.aclose()


async def drained(engine, host: str) -> dict:
    """Drain rounds (the watcher's interval is 0 in tests: driven here) until the host is recorded drained."""
    deadline = asyncio.get_running_loop().time() + DRAINED_WITHIN_S
    while True:
        await engine.hosts.drainer.round()
        [row] = await engine.hosts.list(host)
        if row["state"] == "drained":
            return row
        assert asyncio.get_running_loop().time() < deadline, (row, engine.hosts.drainer.waiting)
        await asyncio.sleep(1)


async def test_a_drained_host_holds_nothing_every_node_moved_with_its_data_then_it_is_removed(engine, app_name):
    business_app = f"{app_name}-b"
    try:
        cluster = await business_addon(engine, business_app)
        business_url = (await engine.environment(business_app))["REDIS_URL"]
        await write(business_url)
        before = await nodes_by_role(engine, business_app, cluster)
        host = primary_of(before)["host"]  # its primary's host: the drain moves the data nodes with a switch
        others = {h.name for h in engine.settings.hosts} - {host}
        engine.placing.closed |= others  # the Starter node placed beside the primary, then every host open again
        try:
            starter = await running_addon(engine, app_name)
        finally:
            engine.placing.closed -= others
        await write((await engine.environment(app_name))["REDIS_URL"])
        [node] = [n for n in await engine.nodes(app_name, starter) if n["state"] == "running"]
        assert node["host"] == host

        with pytest.raises(HostNotEmpty, match=f"holds .* node.*drain {host}"):
            await engine.hosts.remove(host)
        listed = {h["name"]: h for h in await engine.hosts.list()}
        assert listed[host]["used_memory_mib"] > 0 and listed[host]["nodes"]

        await engine.hosts.drain(host)
        another = await engine.add_addon(f"{app_name}-new", "redis-starter-256")  # asked while the drain runs
        row = await drained(engine, host)

        assert row["nodes"] == [] and row["used_memory_mib"] == 0
        [moved] = [n for n in await engine.nodes(app_name, starter) if n["state"] == "running"]
        assert moved["host"] != host
        assert await read((await engine.environment(app_name))["REDIS_URL"]) == KEYS
        after = await nodes_by_role(engine, business_app, cluster)
        assert {role: len(nodes) for role, nodes in after.items()} == {"data": 2, "sentinel": 3, "proxy": 2}
        assert all(n["host"] != host and n["state"] == "running" for nodes in after.values() for n in nodes)
        assert (await engine.environment(business_app))["REDIS_URL"] == business_url
        assert await read(business_url) == KEYS
        drained_host = tuple(h for h in engine.settings.hosts if h.name == host)
        for addon in (starter, cluster):
            assert [c["Name"] for c in await containers_of(addon, drained_host)] == []
        assert (await engine.wait_for_operation(another["operation_id"], timeout=90))["status"] == "succeeded"
        [new_node] = await engine.nodes(f"{app_name}-new", another["addon"])
        assert new_node["host"] != host

        await engine.hosts.remove(host)
        assert host not in [h["name"] for h in await engine.hosts.list()]
        assert host not in engine.runtime.hosts
    finally:
        await remove_everything_of(business_app)
        await remove_everything_of(f"{app_name}-new")


async def test_a_host_whose_docker_engine_does_not_answer_is_not_added_and_nothing_is_recorded(engine, tmp_path):
    before = await engine.events.max_position()
    known = [h["name"] for h in await engine.hosts.list()]
    with pytest.raises(HostNotUsable, match="host-silent: its Docker engine at unix://.* cannot be used"):
        await engine.hosts.add("host-silent", f"unix://{tmp_path}/no-docker.sock", "127.0.0.1", 45000, 45099, 4096)
    assert await engine.events.max_position() == before
    assert [h["name"] for h in await engine.hosts.list()] == known
    assert "host-silent" not in engine.runtime.hosts


async def test_the_cli_lists_the_hosts_and_refuses_a_silent_one_through_the_api(engine, monkeypatch, tmp_path, capsys):
    from aiohttp.test_utils import TestServer

    from adapters.http.app import make_app
    from tests.integration.api_client import cli

    server = TestServer(make_app(engine))
    await server.start_server()
    try:
        monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
        monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
        monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
        assert await cli("hosts") == 0
        listing = capsys.readouterr().out
        assert all(f"| {h.name} " in listing and h.address in listing for h in engine.settings.hosts)
        before = await engine.events.max_position()
        assert await cli("hosts", "add", "host-silent", "--url", f"unix://{tmp_path}/no-docker.sock", "--bind",
                         "127.0.0.1", "--ports", "45000-45099", "--memory-mib", "4096") == 1
        error = capsys.readouterr().err
        assert "host-silent" in error and "cannot be used" in error and "nothing was recorded" in error
        assert await engine.events.max_position() == before
    finally:
        await server.close()


async def test_a_host_added_with_every_image_takes_a_new_addon_at_once_and_is_removed_once_empty(engine, app_name):
    """The added host is one of the stream's Docker engines again, under a name and a loopback address of its own
    (hosts may share an engine): reachable, every image present, so it is recorded and placed on without a restart."""
    engine_of = engine.settings.hosts[0]
    added = await engine.hosts.add("host-extra", engine_of.docker_url, "127.0.9.1", 46000, 46099, 1 << 20)
    assert (added["state"], added["source"], added["nodes"]) == ("active", "operator", [])
    addon = await running_addon(engine, app_name)  # the most room: the new host
    [node] = [n for n in await engine.nodes(app_name, addon) if n["state"] == "running"]
    assert (node["host"], node["address"]) == ("host-extra", "127.0.9.1")
    url = (await engine.environment(app_name))["REDIS_URL"]
    await write(url)
    assert await read(url) == KEYS
    with pytest.raises(HostNotEmpty):
        await engine.hosts.remove("host-extra")
    removal = await engine.remove_addon(app_name, addon)
    assert (await engine.wait_for_operation(removal["operation_id"], timeout=90))["status"] == "succeeded"
    await engine.hosts.remove("host-extra")
    assert "host-extra" not in [h["name"] for h in await engine.hosts.list()]
