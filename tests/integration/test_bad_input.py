"""Bad input gets an error that names the problem, and leaves no container, port or event."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from domain.errors import AddonBusy, InvalidName, NoHostWithRoom, UnknownAddon, UnknownApp, UnknownPlan
from engine import build
from engine.ports import EffectError
from engine.settings import DockerHost
from tests.conftest import HOSTS_FILE
from tests.integration.conftest import containers_of, settings_for


async def nothing_recorded_since(engine, position: int) -> bool:
    return await engine.events.max_position() == position


async def test_an_unknown_plan_is_refused_with_the_valid_plans_and_nothing_recorded(engine, app_name):
    before = await engine.events.max_position()
    with pytest.raises(UnknownPlan) as refused:
        await engine.add_addon(app_name, "redis-starter-3000")
    assert "redis-starter-3000" in str(refused.value) and "redis-starter-1024" in str(refused.value)
    assert await nothing_recorded_since(engine, before)


async def test_an_invalid_app_name_is_refused(engine):
    with pytest.raises(InvalidName, match="app name"):
        await engine.add_addon("My App!", "redis-starter-256")


async def test_unknown_apps_and_addons_are_named_in_the_error(engine, app_name):
    with pytest.raises(UnknownApp, match="never-seen"):
        await engine.addons("never-seen")
    with pytest.raises(UnknownAddon, match=f"{app_name}-0000"):
        await engine.remove_addon(app_name, f"{app_name}-0000")


async def test_a_second_operation_on_a_busy_addon_is_refused(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-starter-256")
    with pytest.raises(AddonBusy, match=requested["operation_id"]):
        await engine.remove_addon(app_name, requested["addon"])
    assert (await engine.wait_for_operation(requested["operation_id"]))["status"] == "succeeded"


async def test_no_host_with_room_is_refused_before_anything_is_made(home, app_name):
    small = tuple(replace(h, memory_mib=300) for h in settings_for(home).hosts)
    async with build(settings_for(home, hosts=small)) as engine:
        before = await engine.events.max_position()
        with pytest.raises(NoHostWithRoom, match="512 MiB"):
            await engine.add_addon(app_name, "redis-starter-512")
        assert await nothing_recorded_since(engine, before)
    assert await containers_of(f"{app_name}-") == []


async def test_an_unreachable_docker_engine_is_one_readable_line(home):
    gone = (DockerHost("host-x", "unix:///nonexistent/docker.sock", "127.0.9.1", 32000, 32010, 1024),)
    with pytest.raises(EffectError) as refused:
        async with build(settings_for(home, hosts=gone)):
            pass
    message = str(refused.value)
    assert "host-x" in message and "unix:///nonexistent/docker.sock" in message and "\n" not in message


def test_a_garbled_certificate_authority_stops_serve_with_one_line_naming_the_file(home):
    tls = home / "tls"
    tls.mkdir(parents=True)
    (tls / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\ngarbled\n-----END CERTIFICATE-----\n")
    (tls / "ca.key").write_text("not a key either\n")
    cli = str(Path(sys.executable).with_name("redis-addons"))
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE))
    served = subprocess.run([cli, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert served.returncode == 1
    assert served.stderr.strip().splitlines()[-1] == f"error: {tls / 'ca.pem'} is not a PEM certificate (garbled or truncated)"
