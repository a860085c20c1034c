"""The engine killed after each step of forcing TLS on, of turning it off, of renewing a
node's certificate, and of a node made before TLS starting to serve it: started again, it
finishes the operation. Then the URL the app was last
restarted with is the one published, it works (plaintext refused while TLS is forced), and the
data is there. The engine reaches the node over TLS throughout, so a crash right after the
plaintext port closed never locks it out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from domain.addon import Addon
from domain.operation import STEPS
from engine import build
from engine.nodes import endpoint
from tests.conftest import HOSTS_FILE, REPO
from tests.integration import data
from tests.integration.conftest import remove_everything_of, settings_for
from tests.integration.test_force_tls import answers

CHILD = """
import asyncio, sys
from datetime import datetime, timedelta, timezone
from domain.addon import Addon
from engine import build, Settings
from engine.nodes import endpoint
from tests.integration import data
from tests.integration.test_tls_serving import an_addon_made_before_tls

async def main():
    app, hook, action = sys.argv[1:4]
    async with build(Settings.from_env()) as engine:
        if action == "serve":
            name = await an_addon_made_before_tls(engine, app)
        else:
            requested = await engine.add_addon(app, "redis-starter-256")
            await engine.wait_for_operation(requested["operation_id"])
            name = requested["addon"]
        await engine.register_app(app, restart="hook", url=hook)
        url = (await engine.environment(app))["REDIS_URL"]
        await data.write(url, data.expected(500))
        addon = await engine.events.get(Addon.id_for(name))
        served = await engine.redis.presented_certificate(endpoint(addon.previous_node, "")) if addon.tls_port else None
        print("ADDON", addon.name, "PLAINTEXT", url, "CERTIFICATE", served and served.sha256, flush=True)
        if action == "serve":
            [name] = (await engine.scheduler.tick())["serving_tls"]
            [operation] = [o for o in await engine.operations(name) if o["kind"] == "serve_tls"]
            await engine.wait_for_operation(operation["id"])
        elif action == "renew":
            far = datetime.now(timezone.utc) + timedelta(days=820)
            [name] = await engine.certificate_renewals.renew_due(far, force_check=True)
            [operation] = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
            await engine.wait_for_operation(operation["id"])
        else:
            for enabled in ([True] if action == "enable" else [True, False]):
                change = await engine.database.change(app, "redis", "force-tls", enabled)
                await engine.wait_for_operation(change["operation_id"])
    print("finished without crashing", flush=True)

asyncio.run(main())
"""

ACTION = {"enable_force_tls": "enable", "disable_force_tls": "disable", "renew_certificate": "renew", "serve_tls": "serve"}
BOUNDARIES = [f"{kind}.{step}:after" for kind in ACTION for step in STEPS[kind][:-1]]


@pytest.mark.parametrize("crash_at", BOUNDARIES)
async def test_killed_at_a_step_boundary_the_operation_ends_after_a_restart(tmp_path, app_name, crash_at, restart_hook):
    hook, received = await restart_hook(200)
    kind = crash_at.split(".")[0]
    home = tmp_path / "home"
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE), REDIS_ADDONS_CRASH_AT=crash_at)
    try:
        # Run without blocking this loop: the child calls the restart hook this loop serves.
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, app_name, hook, ACTION[kind], env=env,
                                                     cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(child.communicate(), timeout=120)
        out, err = out.decode(), err.decode()
        assert child.returncode == -signal.SIGKILL, f"should have crashed at {crash_at}: {out[-2000:]} {err[-2000:]}"
        words = next(line.split() for line in out.splitlines() if line.startswith("ADDON "))
        addon, plaintext, first_certificate = words[1], words[3], words[5]

        async with build(settings_for(home)) as engine:
            for operation in await engine.operations(addon):
                finished = await engine.wait_for_operation(operation["id"], timeout=90)
                assert finished["status"] == "succeeded", json.dumps(finished, indent=1)
            variables = await engine.environment(app_name)
            current = await engine.events.get(Addon.id_for(addon))
            served = await engine.redis.presented_certificate(endpoint(current.previous_node, ""))
            ca = tmp_path / "ca.pem"
            ca.write_text(engine.certificates.certificate_pem)

        url = variables["REDIS_URL"]
        if kind == "enable_force_tls":
            assert url.startswith("rediss://") and not await answers(plaintext)
        elif kind == "disable_force_tls":
            assert url == plaintext and await answers(plaintext)
        elif kind == "renew_certificate":
            assert served.sha256 != first_certificate and url == plaintext
        else:  # serve_tls: REDIS_URL as it was, the rediss:// URL beside it (checked below)
            assert url == plaintext and await answers(plaintext)
        if kind in ("enable_force_tls", "disable_force_tls"):
            assert received[-1] == {"app": app_name, "environment": variables}  # the app has the published URL
        tls = variables["REDIS_TLS_URL"] + f"?ssl_ca_certs={ca}"
        known = data.expected(500)
        assert await data.read(tls, known) == known
    finally:
        await remove_everything_of(app_name)
