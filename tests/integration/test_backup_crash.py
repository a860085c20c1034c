"""The engine killed at each step boundary of a backup and of a restore: started again, it
finishes the operation, with one node, the backup's data, and no archive left half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import redis.asyncio as redis

from domain.operation import STEPS
from engine import build
from tests.conftest import HOSTS_FILE, REPO
from tests.integration import data
from tests.integration.conftest import containers_of, remove_everything_of, settings_for

CHILD = """
import asyncio, sys
import redis.asyncio as redis
from engine import build, Settings
from tests.integration import data

async def main():
    app, crash_in = sys.argv[1], sys.argv[2]
    async with build(Settings.from_env()) as engine:
        requested = await engine.add_addon(app, "redis-starter-256")
        await engine.wait_for_operation(requested["operation_id"])
        url = (await engine.environment(app))["REDIS_URL"]
        await data.write(url, data.expected(2000))
        print("ADDON", requested["addon"], flush=True)
        backup = await engine.backups.create(app, "redis")
        await engine.wait_for_operation(backup["operation_id"])
        client = redis.from_url(url)
        await client.flushall()
        await client.aclose()
        restore = await engine.backups.restore(app, "redis", backup["backup_id"])
        await engine.wait_for_operation(restore["operation_id"])
    print("finished without crashing", flush=True)

asyncio.run(main())
"""

BOUNDARIES = ([f"backup.{step}:after" for step in STEPS["backup"][:-1]]
              + [f"restore.{step}:after" for step in STEPS["restore"][:-1]])


@pytest.mark.parametrize("crash_at", BOUNDARIES)
async def test_a_backup_or_restore_killed_at_a_step_boundary_ends_after_a_restart(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at)
    try:
        child = subprocess.run([sys.executable, "-c", CHILD, app_name, crash_at], env=env, cwd=REPO,
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, f"should have crashed at {crash_at}: {child.stdout[-2000:]} {child.stderr[-2000:]}"
        addon = next(line.split()[1] for line in child.stdout.splitlines() if line.startswith("ADDON "))

        async with build(settings_for(home)) as engine:
            for operation in await engine.operations(addon):
                finished = await engine.wait_for_operation(operation["id"], timeout=90)
                assert finished["status"] == "succeeded", json.dumps(finished, indent=1)
            [backup] = await engine.backups.list(app_name, addon)
            if crash_at.startswith("backup."):  # the restore was never asked: ask it now
                restore = await engine.backups.restore(app_name, addon, backup["id"])
                assert (await engine.wait_for_operation(restore["operation_id"], timeout=90))["status"] == "succeeded"
            url = (await engine.environment(app_name))["REDIS_URL"]
            files = [p.name for p in engine.settings.backups_dir.rglob("*") if p.is_file()]

        assert backup["status"] == "done" and files == [backup["name"]]  # no .partial left
        nodes = await containers_of(addon)
        assert len(nodes) == 1 and nodes[0]["State"]["Running"], [n["Name"] for n in nodes]
        known = data.expected(2000)
        assert await data.read(url, known) == known
        client = redis.from_url(url)
        assert await client.config_get("save") == {"save": "900 1 300 10 60 10000"}  # the save rules are back
        await client.aclose()
    finally:
        await remove_everything_of(app_name)
