"""The engine killed at each step boundary of forcing TLS: started again, it finishes the
operation, and then plaintext is refused, TLS works, the data is there and the app's URL is the
rediss:// one. The engine reaches the node over TLS throughout, so a crash right after the
plaintext port closed never locks it out."""

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
from tests.integration.conftest import remove_everything_of, settings_for
from tests.integration.test_force_tls import answers

CHILD = """
import asyncio, sys
from engine import build, Settings
from tests.integration import data

async def main():
    app = sys.argv[1]
    async with build(Settings.from_env()) as engine:
        requested = await engine.add_addon(app, "redis-starter-256")
        await engine.wait_for_operation(requested["operation_id"])
        url = (await engine.environment(app))["REDIS_URL"]
        await data.write(url, data.expected(500))
        print("ADDON", requested["addon"], "PLAINTEXT", url, flush=True)
        forced = await engine.database.change(app, "redis", "force-tls", True)
        await engine.wait_for_operation(forced["operation_id"])
    print("finished without crashing", flush=True)

asyncio.run(main())
"""

BOUNDARIES = [f"enable_force_tls.{step}:after" for step in STEPS["enable_force_tls"][:-1]]


@pytest.mark.parametrize("crash_at", BOUNDARIES)
async def test_forcing_tls_killed_at_a_step_boundary_ends_forced_after_a_restart(tmp_path, app_name, crash_at):
    home = tmp_path / "home"
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at)
    try:
        child = subprocess.run([sys.executable, "-c", CHILD, app_name], env=env, cwd=REPO,
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, f"should have crashed at {crash_at}: {child.stdout[-2000:]} {child.stderr[-2000:]}"
        words = next(line.split() for line in child.stdout.splitlines() if line.startswith("ADDON "))
        addon, plaintext = words[1], words[3]

        async with build(settings_for(home)) as engine:
            for operation in await engine.operations(addon):
                finished = await engine.wait_for_operation(operation["id"], timeout=90)
                assert finished["status"] == "succeeded", json.dumps(finished, indent=1)
            url = (await engine.environment(app_name))["REDIS_URL"]
            ca = tmp_path / "ca.pem"
            ca.write_text(engine.certificates.certificate_pem)

        assert url.startswith("rediss://") and not await answers(plaintext)
        known = data.expected(500)
        assert await data.read(url + f"?ssl_ca_certs={ca}", known) == known
    finally:
        await remove_everything_of(app_name)
