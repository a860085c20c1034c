"""The engine killed at each step boundary of a plan change: started again, it finishes the
operation (or compensates), with exactly one running node and the data intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from domain.operation import STEPS
from engine import build
from tests.conftest import HOSTS_FILE, REPO
from tests.integration import data
from tests.integration.conftest import containers_of, remove_everything_of, settings_for

CHILD = """
import asyncio, json, sys
from engine import build, Settings
from tests.integration import data

async def main():
    app = sys.argv[1]
    async with build(Settings.from_env()) as engine:
        requested = await engine.add_addon(app, "redis-starter-256")
        await engine.wait_for_operation(requested["operation_id"])
        await data.write((await engine.environment(app))["REDIS_URL"], data.expected(2000))
        print("ADDON", requested["addon"], flush=True)
        change = await engine.change_plan(app, requested["addon"], "redis-starter-512")
        await engine.wait_for_operation(change["operation_id"])
    print("finished without crashing", flush=True)

asyncio.run(main())
"""

BOUNDARIES = [f"change_plan.{step}:after" for step in STEPS["change_plan"][:-1]] + ["change_plan.stop:before"]


def change_plan_until_crash(home, app: str, crash_at: str) -> str:
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at)
    child = subprocess.run([sys.executable, "-c", CHILD, app], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, f"the engine should have crashed at {crash_at}: {child.stdout[-2000:]} {child.stderr[-2000:]}"
    return next(line.split()[1] for line in child.stdout.splitlines() if line.startswith("ADDON "))


@pytest.mark.parametrize("crash_at", BOUNDARIES)
async def test_a_plan_change_killed_at_a_step_boundary_ends_after_a_restart(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    try:
        addon = change_plan_until_crash(home, app_name, crash_at)

        async with build(settings_for(home)) as engine:
            [operation] = [op for op in await engine.operations(addon) if op["kind"] == "change_plan"]
            finished = await engine.wait_for_operation(operation["id"], timeout=90)
            row = await engine.addon(app_name, addon)
            url = (await engine.environment(app_name))["REDIS_URL"]

        assert finished["status"] == "succeeded", json.dumps(finished, indent=1)
        assert row["status"] == "running" and row["plan"] == "redis-starter-512"
        nodes = await containers_of(addon)
        assert len(nodes) == 1, [n["Name"] for n in nodes]
        assert nodes[0]["State"]["Running"] and nodes[0]["Config"]["Labels"]["redis-addons.host"] == row["host"]
        known = data.expected(2000)
        assert await data.read(url, known) == known
    finally:
        await remove_everything_of(app_name)
