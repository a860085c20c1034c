"""The engine killed (SIGKILL) in the middle of an engine upgrade, on real Docker: the next start finishes it,
the addon on the new build with its data. One crash point per kind of effect new to upgrades: a Starter's
node stopped and its successor made on the new build (nothing published yet), and before it is verified; a
Business cluster whose writes were stopped for a major step that does not roll. A rolling Business upgrade
is the Business plan change's replacement, whose switch the engine is killed after in
tests/integration/test_cluster_crash_resume.py. Every step boundary is covered on the in-memory ports
(tests/unit/test_saga_upgrade.py, tests/unit/test_saga_cluster_upgrade.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from dataclasses import replace

import pytest
import redis.asyncio as redis

from engine import build
from tests.conftest import HOSTS_FILE, REPO
from tests.integration.business import nodes_by_role
from tests.integration.conftest import remove_everything_of, settings_for

CHILD = """
import asyncio, dataclasses, sys
import redis.asyncio as redis
from engine import build, Settings

async def main():
    app, plan, version, target = sys.argv[1:5]
    async with build(Settings.from_env()) as engine:
        if len(sys.argv) > 5:  # the catalogue flag that makes the step stop writes
            engine.versions._versions[target] = dataclasses.replace(engine.versions.get(target), rolling_from=())
        requested = await engine.add_addon(app, plan, version=version)
        print("ADDON", requested["addon"], flush=True)
        await engine.wait_for_operation(requested["operation_id"], timeout=240)
        url = (await engine.environment(app))["REDIS_URL"]
        print("URL", url, flush=True)
        client = redis.from_url(url)
        await client.set("before the upgrade", "1")
        await client.aclose()
        upgrading = await engine.database_version.upgrade(app, requested["addon"], target)
        operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
    print("finished without crashing", operation["status"], flush=True)

asyncio.run(main())
"""


def run_until_crash(home, app: str, crash_at: str, *args: str) -> dict[str, str]:
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at,
               REDIS_ADDONS_WATCH_INTERVAL="0")
    child = subprocess.run([sys.executable, "-c", CHILD, app, *args], env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, f"the engine should have crashed at {crash_at}: {child.stdout} {child.stderr}"
    return dict(line.split()[:2] for line in child.stdout.splitlines() if line.startswith(("ADDON ", "URL ")))


@pytest.mark.parametrize("crash_at, plan, version, target, stops", [
    ("upgrade.start_new:after", "redis-starter-256", "6.2.14", "7.0.15", False),
    ("upgrade_cluster_stopped.stop_writes:after", "redis-business-256", "6.2.14", "7.0.15", True),
], ids=["starter: node swapped", "business: writes stopped"])
async def test_a_crashed_upgrade_is_finished_by_the_next_start(tmp_path, app_name, crash_at, plan, version, target,
                                                               stops):
    home = tmp_path / "home"
    try:
        addon = run_until_crash(home, app_name, crash_at, plan, version, target, *(["stop"] if stops else []))["ADDON"]
        async with build(settings_for(home)) as engine:
            if stops:  # the same catalogue as the engine that crashed
                engine.versions._versions[target] = replace(engine.versions.get(target), rolling_from=())
            upgrade = next(o for o in await engine.operations(addon) if o["kind"].startswith("upgrade"))
            assert (await engine.wait_for_operation(upgrade["id"], timeout=240))["status"] == "succeeded"
            assert (await engine.addon(app_name, addon))["version"] == target
            url = (await engine.environment(app_name))["REDIS_URL"]
            client = redis.from_url(url)
            assert (await client.info("server"))["redis_version"] == target
            assert await client.get("before the upgrade") == b"1"
            assert await client.set("after the crash", "1")  # writes taken again
            await client.aclose()
            if plan.startswith("redis-business"):
                nodes = await nodes_by_role(engine, app_name, addon)
                assert [len(nodes[r]) for r in ("data", "sentinel", "proxy")] == [2, 3, 2]
                assert {n["version"] for n in nodes["data"]} == {target}
    finally:
        await remove_everything_of(app_name)


async def test_the_new_build_refuses_writes_until_the_upgrade_is_published(tmp_path, app_name):
    """It listens where the old node did: an app reaches it as soon as it answers. The engine dies with it
    started and not yet verified: a write through REDIS_URL is refused, not acknowledged by a node that an
    undo would remove; the next start verifies the saved keys, publishes, and writes are taken again."""
    home = tmp_path / "home"
    try:
        seen = run_until_crash(home, app_name, "upgrade.wait_ready:after", "redis-starter-256", "6.2.14", "7.0.15")
        client = redis.from_url(seen["URL"])
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):  # before an engine runs again
            await client.set("during the upgrade", "1")
        async with build(settings_for(home)) as engine:
            addon = seen["ADDON"]
            upgrade = next(o for o in await engine.operations(addon) if o["kind"] == "upgrade")
            assert (await engine.wait_for_operation(upgrade["id"], timeout=240))["status"] == "succeeded"
            assert await client.set("after the upgrade", "1")
            assert await client.get("before the upgrade") == b"1"
            assert await client.exists("during the upgrade") == 0
            await client.aclose()
    finally:
        await remove_everything_of(app_name)
