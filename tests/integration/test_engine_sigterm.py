"""The control plane stopped with SIGTERM in the middle of an operation (issue 15, part 5): `redis-addons
serve` exits 0 without a traceback or a task destroyed pending, its data lock released (its lock file
emptied, which only a clean release does), the operation left unfinished in the event log; the next
start finishes it. To be mid-operation for sure, the backup's `save` step is kept retrying: host-d's
engine (the addon's only host) is stopped before the backup is asked."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
from pathlib import Path

import aiohttp

from adapters.data_lock import LOCK_FILE
from engine import build
from tests.integration import data
from tests.integration.engine_down import FAULT_HOSTS_FILE, engine_d, fault_settings, host_d, remove_everything_of_app
from tests.integration import test_data_lock
from tests.integration.test_data_lock import Served


async def test_an_engine_stopped_with_sigterm_mid_backup_exits_cleanly_and_the_backup_ends_at_the_next_start(home, app_name, monkeypatch):
    monkeypatch.setattr(test_data_lock, "HOSTS_FILE", FAULT_HOSTS_FILE)  # the served engine's hosts: host-d only
    served = None
    try:
        async with build(fault_settings(home, host_d())) as engine:
            requested = await engine.add_addon(app_name, "redis-starter-256")
            assert (await engine.wait_for_operation(requested["operation_id"], timeout=60))["status"] == "succeeded"
            addon, url = requested["addon"], (await engine.environment(app_name))["REDIS_URL"]
        known = data.expected(200)
        await data.write(url, known)

        served = Served(home)
        api = await served.api()
        await asyncio.to_thread(engine_d, "stop")
        token = fault_settings(home, host_d()).token_file.read_text().strip()
        async with aiohttp.ClientSession(api, headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(f"/v1/apps/{app_name}/addons/{addon}/backups") as answer:
                assert answer.status == 202, await answer.text()
                operation_id = (await answer.json())["operation"]["id"]
            async with asyncio.timeout(30):  # until `save` has failed to reach the node at least once
                while True:
                    async with http.get(f"/v1/operations/{operation_id}") as answer:
                        steps = {s["name"]: s for s in (await answer.json())["operation"]["steps"]}
                    if steps["save"]["status"] == "running":
                        break
                    await asyncio.sleep(0.2)
        await asyncio.sleep(1)

        code = await asyncio.to_thread(served.stop, signal.SIGTERM)
        output = Path(served.log.name).read_text(errors="replace")
        assert code == 0, output[-3000:]
        for sign in ("Traceback", "Task was destroyed but it is pending", "Unclosed", "Exception ignored"):
            assert sign not in output, output[-3000:]
        assert (home / LOCK_FILE).read_bytes() == b""  # released, not dropped by the kernel at exit
        fd = os.open(home / LOCK_FILE, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free
        finally:
            os.close(fd)

        await asyncio.to_thread(engine_d, "start")
        async with build(fault_settings(home, host_d())) as engine:
            backup = await engine.wait_for_operation(operation_id, timeout=0)
            assert backup["status"] == "running", json.dumps(backup, indent=1)  # left unfinished by the stop
            backup = await engine.wait_for_operation(operation_id, timeout=90)
            assert backup["status"] == "succeeded", json.dumps(backup, indent=1)
            [row] = await engine.backups.list(app_name, addon)
            assert row["status"] == "done", row
        assert await data.read(url, known) == known
    finally:
        if served is not None and served.process.poll() is None:
            served.stop(signal.SIGKILL)
        await remove_everything_of_app(app_name)
