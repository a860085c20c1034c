"""The engine killed (SIGKILL) while it provisions a Business cluster, replaces a lost node of one, or
changes its plan, or restores a backup into it, on real Docker: the next start finishes the job, with exactly the nodes it should
have. One crash point per kind of effect (containers made, nodes started, HAProxy reloaded, Sentinels
reset, the lost node removed, the primary switched, the Sentinels moved onto a restored pair); every
crash point is covered on the in-memory ports (tests/unit/test_saga_cluster_crashes.py,
tests/unit/test_saga_cluster_plan_change.py, tests/unit/test_saga_cluster_restore.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import redis.asyncio as redis

from engine import build
from tests.conftest import HOSTS_FILE, REPO
from tests.integration.business import eventually, nodes_by_role, over_tls, primary_of
from tests.integration.conftest import containers_of, remove_everything_of, settings_for

CHILD = """
import asyncio, sys
import redis.asyncio as redis
from engine import build, Settings

async def main():
    async with build(Settings.from_env()) as engine:
        requested = await engine.add_addon(sys.argv[1], "redis-business-256")
        print("ADDON", requested["addon"], flush=True)
        operation = await engine.wait_for_operation(requested["operation_id"], timeout=240)
        if sys.argv[2] == "replace":
            nodes = await engine.nodes(sys.argv[1], requested["addon"])
            replica = next(n for n in nodes if n["role"] == "data" and not n["is_primary"])
            await (await engine.runtime.client(replica["host"]).containers.get(replica["container"])).delete(force=True)
            print("LOST", replica["id"], flush=True)
            for _ in range(600):
                await engine.watcher.failovers.look()
                await engine.watcher.healer.look()
                await asyncio.sleep(0.2)
        if sys.argv[2] == "change_plan":
            changing = await engine.change_plan(sys.argv[1], requested["addon"], "redis-business-512")
            operation = await engine.wait_for_operation(changing["operation_id"], timeout=240)
        if sys.argv[2] == "restore":
            url = (await engine.environment(sys.argv[1]))["REDIS_URL"]
            client = redis.from_url(url)
            await client.set("in the backup", "1")
            made = await engine.backups.create(sys.argv[1], requested["addon"])
            await engine.wait_for_operation(made["operation_id"], timeout=120)
            await client.set("after the backup", "1")
            await client.aclose()
            restoring = await engine.backups.restore(sys.argv[1], requested["addon"], made["backup_id"])
            operation = await engine.wait_for_operation(restoring["operation_id"], timeout=240)
    print("finished without crashing", operation["status"], flush=True)

asyncio.run(main())
"""


def run_until_crash(home, app: str, crash_at: str, then: str) -> dict[str, str]:
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at,
               REDIS_ADDONS_WATCH_INTERVAL="0")
    child = subprocess.run([sys.executable, "-c", CHILD, app, then], env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, f"the engine should have crashed at {crash_at}: {child.stdout} {child.stderr}"
    return dict(line.split()[:2] for line in child.stdout.splitlines() if line.startswith(("ADDON ", "LOST ")))


async def a_whole_cluster(engine, app: str, addon: str) -> dict:
    nodes = await nodes_by_role(engine, app, addon)
    assert [len(nodes[r]) for r in ("data", "sentinel", "proxy")] == [2, 3, 2]
    assert all(n["state"] == "running" for group in nodes.values() for n in group)
    for role, group in nodes.items():
        assert len({n["host"] for n in group}) == len(group), f"the {role} nodes share a host"
    made = sorted(c["Name"].lstrip("/") for c in await containers_of(addon))
    assert made == sorted(n["container"] for group in nodes.values() for n in group)  # nothing more, nothing less
    return nodes


@pytest.mark.parametrize("crash_at", ["provision_cluster.create:after", "provision_cluster.start_sentinels:after"])
async def test_a_crashed_cluster_provisioning_is_finished_by_the_next_start(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        addon = run_until_crash(home, app_name, crash_at, "provision")["ADDON"]
        async with build(settings_for(home)) as engine:
            [operation] = await engine.operations(addon)
            assert (await engine.wait_for_operation(operation["id"], timeout=240))["status"] == "succeeded"
            await a_whole_cluster(engine, app_name, addon)
            client = redis.from_url((await engine.environment(app_name))["REDIS_URL"])
            assert await client.set("after the crash", "1")
            await client.aclose()
    finally:
        await remove_everything_of(app_name)


@pytest.mark.parametrize("crash_at", ["replace_node.create:after", "replace_node.rewire_proxies:after",
                                      "replace_node.reset_sentinels:after", "replace_node.retire:before"])
async def test_a_crashed_node_replacement_is_finished_by_the_next_start(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        seen = run_until_crash(home, app_name, crash_at, "replace")
        addon, lost = seen["ADDON"], seen["LOST"]
        async with build(settings_for(home)) as engine:
            replacement = next(o for o in await engine.operations(addon) if o["kind"] == "replace_node")
            assert (await engine.wait_for_operation(replacement["id"], timeout=240))["status"] == "succeeded"
            await engine.follower.wait_until(await engine.events.max_position())
            nodes = await a_whole_cluster(engine, app_name, addon)
            assert lost not in {n["id"] for group in nodes.values() for n in group}
            primary = primary_of(nodes)
            password = engine.secrets.password_for(addon)
            node = redis.Redis(host=primary["address"], port=primary["port"], username="default", password=password,
                               **over_tls(primary))

            async def in_sync() -> bool:
                info = await node.info("replication")
                return info["connected_slaves"] == 1 and info["slave0"]["state"] == "online"

            assert await eventually(in_sync, timeout=30)
            await node.aclose()
    finally:
        await remove_everything_of(app_name)


# Its nodes made, started and routed are the kinds of effect the replacement's crash points cover already;
# new here: the primary switched by the Sentinels, then the old nodes removed and forgotten by the next start.
@pytest.mark.parametrize("crash_at", ["change_cluster_plan.switch:after"])
async def test_a_crashed_business_plan_change_is_finished_by_the_next_start(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        addon = run_until_crash(home, app_name, crash_at, "change_plan")["ADDON"]
        async with build(settings_for(home)) as engine:
            change = next(o for o in await engine.operations(addon) if o["kind"] == "change_cluster_plan")
            assert (await engine.wait_for_operation(change["id"], timeout=240))["status"] == "succeeded"
            nodes = await a_whole_cluster(engine, app_name, addon)
            for node in nodes["data"]:  # both new, with the new plan's memory
                client = redis.Redis(host=node["address"], port=node["port"], username="default",
                                     password=engine.secrets.password_for(addon), **over_tls(node))
                assert (await client.config_get("maxmemory"))["maxmemory"] == str(512 * 1024 * 1024)
                await client.aclose()
            assert (await engine.addon(app_name, addon))["plan"] == "redis-business-512"
            client = redis.from_url((await engine.environment(app_name))["REDIS_URL"])
            assert await client.set("after the crash", "1")
            await client.aclose()
    finally:
        await remove_everything_of(app_name)


# New here: each Sentinel stopped, its file rewritten to watch the restored pair, started again; the next
# start removes the old pair and records the restore.
@pytest.mark.parametrize("crash_at", ["restore_cluster.switch:after"])
async def test_a_crashed_business_restore_is_finished_by_the_next_start(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        addon = run_until_crash(home, app_name, crash_at, "restore")["ADDON"]
        async with build(settings_for(home)) as engine:
            restore = next(o for o in await engine.operations(addon) if o["kind"] == "restore_cluster")
            assert (await engine.wait_for_operation(restore["id"], timeout=240))["status"] == "succeeded"
            await a_whole_cluster(engine, app_name, addon)
            client = redis.from_url((await engine.environment(app_name))["REDIS_URL"])
            assert await client.get("in the backup") == b"1"
            assert await client.exists("after the backup") == 0  # the backup's data, not the old primary's
            assert await client.set("after the crash", "1")  # acknowledged: the restored primary has its replica
            await client.aclose()
    finally:
        await remove_everything_of(app_name)
