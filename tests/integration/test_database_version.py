"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade"), through
the HTTP API and the CLI, on a real engine and real Redis servers: a Redis 7.0.15 addon is offered
Valkey 8.1.8 until it forces TLS (8.1.8 is built without TLS, and the addon is told so); a Redis 6.2.7
addon is offered 6.2.14 first; an unknown addon is a clear error.

The module shares one engine and one API server; each app has one Starter addon (~1 s to provision)."""

from __future__ import annotations

import secrets

import pytest
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from tests.integration.api_client import cli, session, token, url
from tests.integration.conftest import remove_everything_of, running_addon, settings_for

RUN = secrets.token_hex(3)
APP, OLD_APP = f"it-dv-{RUN}", f"it-dvo-{RUN}"  # a 7.0.15 addon (the default), a 6.2.7 one
HELD_BACK = "the addon forces TLS, and the upgrade otherwise available (8.1.8) is built without TLS"


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("version") / "home")) as running:
            yield running
    finally:
        for app in (APP, OLD_APP):
            await remove_everything_of(app)


@pytest.fixture(scope="module")
async def server(engine):
    server = TestServer(make_app(engine))
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def addon(engine) -> str:
    return await running_addon(engine, APP)


@pytest.fixture
def cli_env(engine, server, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))


async def get_version(engine, server, app: str, addon: str = "redis") -> tuple[int, dict]:
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{app}/addons/{addon}/version")) as response:
            return response.status, await response.json()


async def shown_by_cli(app: str, capsys) -> str:
    assert await cli("--app", app, "--addon", "redis", "database-version") == 0
    return capsys.readouterr().out


def cells(out: str) -> list[list[str]]:
    """The boxed table's header and rows."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]


async def test_redis_7_is_offered_valkey_8_until_it_forces_tls(engine, server, cli_env, addon, capsys):
    status, body = await get_version(engine, server, APP)
    assert status == 200, body
    assert body["version"] == {
        "addon": addon, "engine": "redis", "version": "7.0.15", "tls": True, "retired": False, "force_tls": False,
        "upgrades": [{"version": "8.1.8", "engine": "valkey", "kind": "major", "tls": False, "note": ""}],
        "advice": None, "nodes": [{"id": body["version"]["nodes"][0]["id"], "version": "7.0.15", "is_primary": True}]}
    out = await shown_by_cli(APP, capsys)
    assert out.splitlines()[:3] == [f"-----> {addon} runs Redis 7.0.15", "       TLS:       yes",
                                    "       Retired:   no"]
    assert cells(out) == [["VERSION", "ENGINE", "KIND", "TLS"], ["8.1.8", "valkey", "major", "no"]]

    requested = await engine.database.change(APP, addon, "force-tls", True)
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    status, body = await get_version(engine, server, APP, addon)
    assert status == 200 and body["version"]["upgrades"] == [] and body["version"]["force_tls"] is True
    assert body["version"]["advice"] == f"no upgrade available: {HELD_BACK}"
    out = await shown_by_cli(APP, capsys)
    assert "       TLS:       yes (forced)" in out.splitlines() and "VERSION" not in out
    assert out.splitlines()[-1] == f" !     No upgrade available: {HELD_BACK}"


async def test_redis_6_2_7_goes_to_6_2_14_first(engine, server, cli_env, capsys):
    requested = await engine.add_addon(OLD_APP, "redis-starter-256", version="6.2.7")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    status, body = await get_version(engine, server, OLD_APP)
    assert status == 200 and (body["version"]["tls"], body["version"]["advice"]) == (False, None)
    assert body["version"]["upgrades"] == [{"version": "6.2.14", "engine": "redis", "kind": "patch", "tls": False,
                                            "note": ""}]
    out = await shown_by_cli(OLD_APP, capsys)
    assert out.startswith(f"-----> {requested['addon']} runs Redis 6.2.7\n")
    assert cells(out) == [["VERSION", "ENGINE", "KIND", "TLS"], ["6.2.14", "redis", "patch", "no"]]


async def test_an_unknown_addon_is_a_clear_error(engine, server, cli_env, addon, capsys):
    status, body = await get_version(engine, server, APP, f"{APP}-0000")
    assert status == 404 and body["error"]["rule"] == "unknown-addon"
    assert body["error"]["message"] == f"app '{APP}' has no addon '{APP}-0000'"
    assert await cli("--app", APP, "--addon", f"{APP}-0000", "database-version") == 1
    assert capsys.readouterr().err == f"error: app '{APP}' has no addon '{APP}-0000'\n"


async def test_the_cli_takes_the_next_step_and_the_api_refuses_one_off_the_path(engine, server, cli_env, capsys):
    # OLD_APP's 6.2.7 addon (test_redis_6_2_7_goes_to_6_2_14_first made it, or it is made here)
    if not any(a["status"] == "running" for a in await engine.addons(OLD_APP)):
        requested = await engine.add_addon(OLD_APP, "redis-starter-256", version="6.2.7")
        assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    async with session(engine) as http:
        async with http.post(url(server, f"/v1/apps/{OLD_APP}/addons/redis/upgrade"), json={"version": "7.0.15"}) as r:
            assert r.status == 409 and (await r.json())["error"]["rule"] == "upgrade-step-by-step"
    assert await cli("--app", OLD_APP, "--addon", "redis", "database-upgrade") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("-----> Upgrading ") and " from 6.2.7 to Redis 6.2.14 (patch)" in out[0]
    assert any("restart_app" in line for line in out) and out[-1].endswith(" runs Redis 6.2.14")
    status, body = await get_version(engine, server, OLD_APP)
    assert (body["version"]["version"], [u["version"] for u in body["version"]["upgrades"]]) == ("6.2.14", ["7.0.15"])
