"""Stats of a real starter-256 node under a known load (issue 14, parts 1 and 2): memory grows when
50 MB are written, its highest stays after FLUSHALL and resets when the node restarts; the size on
disk follows a SAVE; CPU rises under redis-benchmark; swap is said not allowed. Then the same
figures through the HTTP API and the CLI, and bad input named.

One engine, API server and addon for the module; the sampler is off (interval 0): each test takes
its samples with sample_once()."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from tests.integration.api_client import cli, session, token, url
from tests.integration.business import business_addon, direct, nodes_by_role, primary_of
from tests.integration.conftest import remove_everything_of, running_addon, settings_for

RUN = secrets.token_hex(3)
APP = f"it-stats-{RUN}"
BUSINESS_APP = f"it-statsb-{RUN}"
MB = 1024 * 1024


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("stats") / "home")) as running:
            yield running
    finally:
        for app in (APP, BUSINESS_APP):
            await remove_everything_of(app)


@pytest.fixture(scope="module")
async def addon(engine):
    return await running_addon(engine, APP)


@pytest.fixture(scope="module")
async def server(engine):
    server = TestServer(make_app(engine))
    await server.start_server()
    yield server
    await server.close()


async def client(engine) -> aioredis.Redis:
    return aioredis.from_url((await engine.environment(APP))["REDIS_URL"])


async def sample(engine, addon: str):
    [node] = [s for s in await engine.stats_sampler.sample_once() if s.addon == addon]
    assert node.up, node
    return node


async def test_memory_grows_with_50_mb_its_highest_stays_after_flushall_and_resets_on_restart(engine, addon):
    redis = await client(engine)
    try:
        before = await sample(engine, addon)
        assert before.container.swap_allowed is False and before.container.swap_used_bytes is None
        value = os.urandom(MB)
        for i in range(50):
            await redis.set(f"blob:{i}", value)
        loaded = await sample(engine, addon)
        assert loaded.database.used_memory - before.database.used_memory >= 49 * MB
        assert loaded.container.memory_used_bytes - before.container.memory_used_bytes >= 40 * MB
        assert loaded.database.keys == {0: 50}
        assert loaded.memory_highest_bytes >= loaded.container.memory_used_bytes
        peak = loaded.memory_highest_bytes

        await redis.flushall()
        flushed = await sample(engine, addon)
        assert flushed.database.used_memory < before.database.used_memory + 5 * MB
        assert flushed.memory_highest_bytes >= peak  # the highest since the restart stays

        [node] = await engine.nodes(APP, addon)
        await engine.runtime.stop_node(node["host"], node["container"], timeout_s=10)
        stopped = next(s for s in await engine.stats_sampler.sample_once() if s.addon == addon)
        assert not stopped.up and stopped.database is None
        await engine.runtime.start_node(node["host"], node["container"])
        restarted = await answering(engine, addon)
        assert restarted.database.run_id != flushed.database.run_id
        assert restarted.memory_highest_bytes < peak - 40 * MB  # reset: only what ran since the restart
        assert restarted.memory_highest_bytes >= restarted.container.memory_used_bytes
    finally:
        await redis.aclose()


async def answering(engine, addon: str, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = next(s for s in await engine.stats_sampler.sample_once() if s.addon == addon)
        if found.up:
            return found
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.3)


async def test_disk_size_follows_a_save(engine, addon):
    redis = await client(engine)
    try:
        await redis.flushall()
        await redis.save()
        empty = (await sample(engine, addon)).disk_bytes
        assert empty is not None and empty < 64 * 1024
        for i in range(8):  # random bytes: the RDB's LZF compression leaves them as they are
            await redis.set(f"disk:{i}", os.urandom(MB))
        assert (await sample(engine, addon)).disk_bytes == empty  # not saved yet
        await redis.save()
        saved = (await sample(engine, addon)).disk_bytes
        assert 8 * MB <= saved < 9 * MB

        # With AOF on, the files its manifest lists count too (Redis 7: appendonlydir/, a base RDB of the
        # data the rewrite found, then the increments).
        requested = await engine.database.change(APP, addon, "aof", True)
        assert (await engine.wait_for_operation(requested["operation_id"], timeout=60))["status"] == "succeeded"
        await redis.set("disk:after-aof", os.urandom(MB))
        with_aof = (await sample(engine, addon)).disk_bytes
        assert saved + 8 * MB + MB <= with_aof < saved + 10 * MB, (saved, with_aof)
    finally:
        await redis.flushall()
        await redis.aclose()


async def test_cpu_rises_under_redis_benchmark(engine, addon):
    [node] = await engine.nodes(APP, addon)
    password = engine.secrets.peek(addon)
    await sample(engine, addon)
    await asyncio.sleep(1)
    idle = (await sample(engine, addon)).container.cpu_percent
    bench = subprocess.Popen(["redis-benchmark", "-h", node["address"], "-p", str(node["port"]), "-a", password,
                              "-n", "2000000", "-c", "20", "-P", "16", "-t", "set,get", "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.sleep(0.5)
        await sample(engine, addon)  # from here: the node under load
        await asyncio.sleep(1.5)
        assert bench.poll() is None, "redis-benchmark ended before the node was sampled under load"
        busy = await sample(engine, addon)
    finally:
        bench.kill()
        bench.wait()
    assert idle is not None and idle < 10
    assert busy.container.cpu_percent > max(20, 3 * idle), (idle, busy.container.cpu_percent)
    assert busy.database.instantaneous_ops_per_sec > 1000
    assert busy.database.total_commands_processed > 10_000


async def test_the_api_answers_the_figures_and_names_bad_input(engine, addon, server):
    for _ in range(2):  # CPU % compares two reads
        await engine.stats_sampler.sample_once()
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/stats")) as response:
            assert response.status == 200
            current = await response.json()
        [node] = current["nodes"]
        assert current["addon"] == addon and node["role"] == "data" and node["up"] is True
        assert node["memory"]["limit"] == (256 + 64) * MB
        assert node["memory"]["free"] == node["memory"]["limit"] - node["memory"]["used"]
        assert node["memory"]["highest"] >= node["memory"]["used"]
        assert node["swap"] == {"allowed": False, "used": None, "highest": None, "free": None,
                                "note": "no swap allowed"}
        assert node["database"]["role"] == "master" and node["database"]["maxmemory"] == 256 * MB
        assert node["disk_bytes"] is not None and node["cpu_percent"] is not None

        async with http.get(url(server, f"/v1/apps/{APP}/addons/{addon}/stats/history?node={node['node']}")) as response:
            assert response.status == 200
            history = await response.json()
        points = history["nodes"][node["node"]]
        assert history["period"] == "hour" and len(points) >= 2
        assert points[-1]["memory_used"] == node["memory"]["used"]
        async with http.get(url(server, f"/v1/apps/{APP}/addons/{addon}/stats/history?period=day")) as response:
            assert response.status == 200
            assert (await response.json())["step_s"] == 60

        async with http.get(url(server, f"/v1/apps/{APP}/addons/{addon}/stats/history?period=year")) as response:
            assert response.status == 400
            error = (await response.json())["error"]
            assert error["rule"] == "invalid-stats-query" and "period 'year'" in error["message"]
        async with http.get(url(server, f"/v1/apps/{APP}/addons/{addon}/stats/history?node=nope")) as response:
            assert response.status == 400
            assert "node 'nope'" in (await response.json())["error"]["message"]
        async with http.get(url(server, f"/v1/apps/{APP}/addons/{APP}-0000/stats")) as response:
            assert response.status == 404


async def test_the_cli_prints_the_reference_figures(engine, addon, server, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    assert await cli("stats", "--app", APP, "--addon", "redis") == 0
    out = capsys.readouterr().out
    for words in ("CPU", "MEMORY", "HIGHEST", "FREE", "no swap allowed", "DISK", "primary", "320.0 MiB"):
        assert words in out, (words, out)
    assert await cli("stats", "--app", APP, "--addon", f"{APP}-0000") == 1
    assert f"error: app '{APP}' has no addon '{APP}-0000'" in capsys.readouterr().err


async def test_a_business_addon_shows_each_nodes_figures_with_its_role_and_a_replicas_lag(engine):
    name = await business_addon(engine, BUSINESS_APP)
    password = engine.secrets.peek(name)
    nodes = await nodes_by_role(engine, BUSINESS_APP, name)
    primary = primary_of(nodes)
    writer = direct(primary, password)
    try:
        for i in range(100):
            await writer.set(f"k{i}", "v" * 1000)
    finally:
        await writer.aclose()
    await engine.stats_sampler.sample_once()
    current = await engine.addon_stats(BUSINESS_APP, name)
    by_id = {n["node"]: n for n in current["nodes"]}
    assert set(by_id) == {n["id"] for role in nodes.values() for n in role}  # 2 data, 3 Sentinels, 2 HAProxy
    for node in current["nodes"]:
        assert node["up"] and node["memory"]["used"] > 0 and node["swap"]["note"] == "no swap allowed", node
        assert (node["database"] is not None) == (node["role"] == "data") == (node["disk_bytes"] is not None)
    [replica] = [n for n in nodes["data"] if not n["is_primary"]]
    primary_figures, replica_figures = by_id[primary["id"]]["database"], by_id[replica["id"]]["database"]
    assert primary_figures["role"] == "master" and primary_figures["connected_slaves"] == 1
    assert primary_figures["keys"] == {"db0": 100} and primary_figures["lag_bytes"] is None
    assert replica_figures["role"] == "slave" and replica_figures["master_link_up"] is True
    assert replica_figures["lag_bytes"] is not None and replica_figures["lag_bytes"] >= 0
