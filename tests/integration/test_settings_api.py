"""Database settings through the HTTP API and the CLI, on a real engine, a real Docker host and a
real Redis server: shown, turned on and off (and seen so by redis-py's CONFIG GET), and each
mistake refused with one clear error and no operation recorded.

The module shares one engine, one API server and one addon: tests that change a setting put it
back as they found it (the defaults: RDB on, AOF off, cache mode off, force TLS off)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from tests.integration.conftest import remove_everything_of, running_addon, settings_for
from tests.integration.api_client import cli, session, token, url

RUN = secrets.token_hex(3)
APP = f"it-st-{RUN}"  # one starter addon on the default version (7.0.15, built with TLS)
NO_TLS_APP = f"it-stn-{RUN}"  # one on 6.2.14, built without TLS
RDB_RULES = "900 1 300 10 60 10000"
NO_PERSISTENCE = "neither RDB nor AOF persistence: every key is lost when the node restarts"


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("settings") / "home")) as running:
            yield running
    finally:
        for app in (APP, NO_TLS_APP):
            await remove_everything_of(app)


@pytest.fixture(scope="module")
async def server(engine):
    server = TestServer(make_app(engine))
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def addon(engine):
    name = await running_addon(engine, APP)
    client = await redis_client(engine)
    try:
        await client.set("greeting", "hello")
    finally:
        await client.aclose()
    return name


@pytest.fixture
def cli_env(engine, server, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))


async def redis_client(engine) -> aioredis.Redis:
    return aioredis.from_url((await engine.environment(APP))["REDIS_URL"], decode_responses=True)


async def server_config(engine) -> dict:
    """What the running server says, through redis-py."""
    client = await redis_client(engine)
    try:
        found = {}
        for name in ("save", "appendonly", "maxmemory-policy"):
            found.update(await client.config_get(name))
        found["greeting"] = await client.get("greeting")  # the data stays through every change
        return found
    finally:
        await client.aclose()


DEFAULT_CONFIG = {"save": RDB_RULES, "appendonly": "no", "maxmemory-policy": "noeviction", "greeting": "hello"}


async def api(engine, server, method: str, path: str, **kwargs) -> tuple[int, dict, dict]:
    async with session(engine) as http:
        async with http.request(method, url(server, path), **kwargs) as response:
            return response.status, await response.json(), dict(response.headers)


async def shown(engine, server) -> dict:
    status, body, _ = await api(engine, server, "GET", f"/v1/apps/{APP}/addons/redis/settings")
    assert status == 200, body
    return body["settings"]


async def operation_ids(engine, server, addon: str) -> list[str]:
    status, body, _ = await api(engine, server, "GET", f"/v1/operations?addon={addon}")
    assert status == 200
    return [o["id"] for o in body["operations"]]


def cells(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[0].startswith("+--") and lines[0] == lines[2]
    end = lines.index(lines[0], 3)
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:end]]


# -- shown ---------------------------------------------------------------------------------


async def test_settings_shows_the_defaults(engine, server, cli_env, addon, capsys):
    version = (await engine.addon(APP, addon))["version"]
    expires = (await engine.database.show(APP, addon))["tls_certificate_expires"]
    assert 824 <= (datetime.fromisoformat(expires) - datetime.now(timezone.utc)).days <= 825
    assert await shown(engine, server) == {
        "addon": addon, "rdb": True, "aof": False, "cache_mode": False, "force_tls": False,
        "version": version, "timeout": 150, "databases": 5, "aof_fsync": "everysec",
        "maxmemory_policy": "noeviction", "tls_available": True, "tls_port": (await engine.addon(APP, addon))["tls_port"],
        "tls_unavailable": None, "tls_certificate_expires": expires,
        "warnings": []}

    assert await cli("--app", APP, "--addon", "redis", "settings") == 0
    out = capsys.readouterr().out
    assert cells(out) == [
        ["RDB persistence", "on"],
        ["AOF persistence", "off"],
        ["Cache mode", "off (maxmemory-policy noeviction)"],
        ["Force TLS", f"off (TLS served on port {(await engine.addon(APP, addon))['tls_port']}, beside plaintext)"],
        ["TLS certificate", f"valid until {expires[:10]} (renewed 30 days before)"],
        ["Engine version", version],
        ["Idle timeout", "150 s"],
        ["Databases", "5 (0 to 4)"],
    ]
    assert [c.strip() for c in out.splitlines()[1].strip("|").split("|")] == ["SETTING", "VALUE"]
    assert out.endswith("+\n")  # no warning with RDB on
    assert await server_config(engine) == DEFAULT_CONFIG


# -- changed ---------------------------------------------------------------------------------


async def test_settings_enable_aof_follows_the_steps_and_the_server_has_it_then_disable(engine, server, cli_env, addon, capsys):
    assert await cli("--app", APP, "--addon", "redis", "settings-enable", "aof") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"-----> Enabling AOF persistence on {addon} ..."
    assert [line.split()[:2] for line in lines[1:-1]] == [["apply", "done"], ["verify", "done"], ["publish", "done"]]
    assert lines[-1] == f"-----> AOF persistence enabled on {addon}"
    assert await server_config(engine) == {**DEFAULT_CONFIG, "appendonly": "yes"}
    assert (await shown(engine, server))["aof"] is True

    assert await cli("--app", APP, "--addon", addon, "settings") == 0  # the ID works as well as "redis"
    assert ["AOF persistence", "on (appendfsync everysec)"] in cells(capsys.readouterr().out)
    status, body, _ = await api(engine, server, "GET", f"/v1/operations?addon={addon}")  # oldest first
    assert [(o["kind"], o["status"]) for o in body["operations"]][-1] == ("change_settings", "succeeded")

    assert await cli("--app", APP, "--addon", "redis", "settings-disable", "aof") == 0
    lines = capsys.readouterr().out.splitlines()
    assert (lines[0], lines[-1]) == (f"-----> Disabling AOF persistence on {addon} ...",
                                     f"-----> AOF persistence disabled on {addon}")
    assert await server_config(engine) == DEFAULT_CONFIG
    assert (await shown(engine, server))["aof"] is False


async def test_without_rdb_nor_aof_the_cli_warns_then_rdb_back_through_the_api_with_wait(engine, server, cli_env, addon, capsys):
    assert await cli("--app", APP, "--addon", "redis", "settings-disable", "rdb") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [f"-----> RDB persistence disabled on {addon}", f" !     {NO_PERSISTENCE}"]
    assert await server_config(engine) == {**DEFAULT_CONFIG, "save": ""}
    assert await cli("--app", APP, "--addon", "redis", "settings") == 0
    out = capsys.readouterr().out
    assert ["RDB persistence", "off"] in cells(out) and out.endswith(f"+\n !     {NO_PERSISTENCE}\n")

    path = f"/v1/apps/{APP}/addons/redis/settings/rdb?wait=true"
    status, body, headers = await api(engine, server, "PUT", path, json={"enabled": True})
    assert status == 200, body
    assert headers["Location"] == f"/v1/operations/{body['operation']['id']}"
    assert (body["operation"]["kind"], body["operation"]["status"]) == ("change_settings", "succeeded")
    assert body["addon"]["name"] == addon and body["warnings"] == []
    assert body["settings"]["rdb"] is True and body["settings"]["warnings"] == []
    assert await server_config(engine) == DEFAULT_CONFIG


async def test_cache_mode_through_the_api_answers_202_then_applies_and_off_through_the_cli(engine, server, cli_env, addon, capsys):
    path = f"/v1/apps/{APP}/addons/{addon}/settings/cache_mode"  # the key's spelling is accepted too
    status, body, headers = await api(engine, server, "PUT", path, json={"enabled": True})
    assert status == 202, body
    assert headers["Location"] == f"/v1/operations/{body['operation']['id']}"
    assert body["operation"]["kind"] == "change_settings" and body["warnings"] == []
    operation = await engine.wait_for_operation(body["operation"]["id"], timeout=60)
    assert operation["status"] == "succeeded", operation
    assert await server_config(engine) == {**DEFAULT_CONFIG, "maxmemory-policy": "allkeys-lru"}
    assert (await shown(engine, server))["maxmemory_policy"] == "allkeys-lru"

    assert await cli("--app", APP, "--addon", "redis", "settings-disable", "cache-mode") == 0
    lines = capsys.readouterr().out.splitlines()
    assert (lines[0], lines[-1]) == (f"-----> Disabling cache mode on {addon} ...", f"-----> Cache mode disabled on {addon}")
    assert await server_config(engine) == DEFAULT_CONFIG


# -- refused, with nothing changed -----------------------------------------------------------


async def test_an_unknown_setting_is_refused_naming_the_settings(engine, server, cli_env, addon, capsys):
    before = await operation_ids(engine, server, addon)
    status, body, _ = await api(engine, server, "PUT", f"/v1/apps/{APP}/addons/redis/settings/appendonly",
                                json={"enabled": True})
    assert status == 400 and body["error"]["rule"] == "known-setting", body
    assert "'appendonly'" in body["error"]["message"] and "rdb, aof, cache-mode, force-tls" in body["error"]["message"]

    with pytest.raises(SystemExit) as exit_code:
        await cli("--app", APP, "--addon", "redis", "settings-enable", "appendonly")
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'appendonly'" in err and "'rdb', 'aof', 'cache-mode', 'force-tls'" in err
    assert await operation_ids(engine, server, addon) == before
    assert await server_config(engine) == DEFAULT_CONFIG


async def test_enabling_a_setting_already_on_is_a_409_and_records_nothing(engine, server, cli_env, addon, capsys):
    before = await operation_ids(engine, server, addon)
    assert await cli("--app", APP, "--addon", "redis", "settings-enable", "rdb") == 1
    assert capsys.readouterr().err == f"error: RDB persistence is already on for addon {addon}\n"
    status, body, _ = await api(engine, server, "PUT", f"/v1/apps/{APP}/addons/redis/settings/aof",
                                json={"enabled": False})
    assert status == 409 and body["error"]["rule"] == "setting-changes-something", body
    assert await operation_ids(engine, server, addon) == before


async def test_a_body_without_a_boolean_enabled_is_a_400_naming_the_field(engine, server, addon):
    before = await operation_ids(engine, server, addon)
    path = f"/v1/apps/{APP}/addons/redis/settings/aof"
    for sent in ({}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": None}, {"on": True}):
        status, body, _ = await api(engine, server, "PUT", path, json=sent)
        assert status == 400, (sent, body)
        assert body["error"]["field"] == "enabled" and "'enabled'" in body["error"]["message"], body
    status, body, _ = await api(engine, server, "PUT", path, data=b"enabled=true")
    assert status == 400 and body["error"]["rule"] == "malformed-json", body
    assert await operation_ids(engine, server, addon) == before
    assert (await shown(engine, server))["aof"] is False


async def test_force_tls_through_the_cli_and_the_api_with_the_ca_from_tls_ca(engine, server, cli_env, addon, capsys,
                                                                                tmp_path):
    assert await cli("--app", APP, "--addon", "redis", "tls-ca") == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and pem == engine.certificates.certificate_pem
    (tmp_path / "ca.pem").write_text(pem)
    status, body, headers = await api_text(engine, server, f"/v1/apps/{APP}/addons/redis/tls_ca")
    assert (status, body) == (200, pem) and headers["Content-Type"].startswith("application/x-pem-file")

    assert await cli("--app", APP, "--addon", "redis", "settings-enable", "force-tls") == 0
    out = capsys.readouterr().out
    assert f"-----> Force TLS enabled on {addon}" in out and "restart_app" in out, out
    environment = await engine.environment(APP)
    assert environment["REDIS_URL"].startswith("rediss://") and environment["REDIS_URL"] == environment["REDIS_TLS_URL"]
    tls = aioredis.from_url(environment["REDIS_URL"], ssl_ca_certs=str(tmp_path / "ca.pem"), decode_responses=True)
    try:
        assert await tls.get("greeting") == "hello"  # TLS, verified with the CA tls-ca printed
    finally:
        await tls.aclose()
    assert await cli("--app", APP, "--addon", "redis", "settings") == 0
    assert ["Force TLS", "on (TLS only)"] in cells(capsys.readouterr().out)

    status, body, _ = await api(engine, server, "PUT", f"/v1/apps/{APP}/addons/redis/settings/force-tls",
                                json={"enabled": False}, params={"wait": "true"})
    assert status == 200 and body["settings"]["force_tls"] is False, body
    assert [s["name"] for s in body["operation"]["steps"]] == ["apply", "verify", "publish", "restart_app"]
    assert await server_config(engine) == DEFAULT_CONFIG  # plaintext REDIS_URL again, data intact


async def api_text(engine, server, path: str) -> tuple[int, str, dict]:
    async with session(engine) as http:
        async with http.get(url(server, path)) as response:
            return response.status, await response.text(), dict(response.headers)


async def test_force_tls_on_a_version_without_tls_names_the_versions_that_have_it(engine, server, cli_env, capsys):
    requested = await engine.add_addon(NO_TLS_APP, "redis-starter-256", version="6.2.14")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    assert await cli("--app", NO_TLS_APP, "--addon", "redis", "settings") == 0
    assert ["Force TLS", "off (not available: 6.2.14 has no TLS)"] in cells(capsys.readouterr().out)
    assert await cli("--app", NO_TLS_APP, "--addon", "redis", "settings-enable", "force-tls") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: addon {requested['addon']} runs 6.2.14, built without TLS; ") and len(err.splitlines()) == 1
    assert err.endswith("the versions with TLS are: 7.0.15, 8.0.2, 8.1.1\n")  # not 8.0.1: retired
    assert await cli("--app", NO_TLS_APP, "--addon", "redis", "tls-ca") == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "built without TLS; the versions with TLS are: 7.0.15" in captured.err


async def test_settings_of_an_unknown_addon_and_verbs_without_an_app_or_addon(engine, server, cli_env, addon, capsys):
    status, body, _ = await api(engine, server, "GET", f"/v1/apps/{APP}/addons/{APP}-9999/settings")
    assert status == 404 and body["error"]["rule"] == "unknown-addon", body
    assert await cli("--app", APP, "settings") == 1
    assert capsys.readouterr().err.startswith("error: `settings` needs an addon: redis-addons --app APP --addon redis settings")
    assert await cli("--addon", "redis", "settings-enable", "aof") == 1
    assert "--app APP settings-enable" in capsys.readouterr().err
