"""A crash in the middle of provisioning: the next start finishes the job, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import redis.asyncio as redis

from engine import build
from tests.conftest import HOSTS_FILE, REPO
from tests.integration.conftest import containers_of, remove_everything_of, settings_for

CHILD = """
import asyncio, sys
from engine import build, Settings

async def main():
    async with build(Settings.from_env()) as engine:
        requested = await engine.add_addon(sys.argv[1], "redis-starter-256")
        print("ADDON", requested["addon"], flush=True)
        await engine.wait_for_operation(requested["operation_id"], timeout=60)
    print("finished without crashing", flush=True)

asyncio.run(main())
"""


def provision_until_crash(home, app: str, crash_at: str) -> str:
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at)
    child = subprocess.run([sys.executable, "-c", CHILD, app], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, f"the engine should have crashed at {crash_at}: {child.stdout} {child.stderr}"
    return next(line.split()[1] for line in child.stdout.splitlines() if line.startswith("ADDON "))


# Every boundary after the container exists and before the environment is published.
@pytest.mark.parametrize("crash_at", ["provision.create:after", "provision.start:before", "provision.start:after", "provision.wait_ready:after", "provision.publish:before"])
async def test_a_crashed_provisioning_ends_with_one_running_node_and_one_set_of_variables(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        addon = provision_until_crash(home, app_name, crash_at)
        assert len(await containers_of(addon)) == 1

        async with build(settings_for(home)) as engine:
            [operation] = await engine.operations(addon)
            finished = await engine.wait_for_operation(operation["id"], timeout=60)
            assert finished["status"] == "succeeded", finished
            env = await engine.environment(app_name)
            [row] = await engine.addons(app_name)

        assert row["status"] == "running"
        assert sorted(env) == ["REDIS_TLS_URL", "REDIS_URL", "SCALINGO_REDIS_TLS_URL", "SCALINGO_REDIS_URL"]
        nodes = await containers_of(addon)
        assert len(nodes) == 1 and nodes[0]["State"]["Running"]
        client = redis.from_url(env["REDIS_URL"])
        assert await client.set("after-crash", "1")
        await client.aclose()
    finally:
        await remove_everything_of(app_name)
