"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade"), through
the HTTP API and the CLI, on a real engine and real Redis servers: a Redis 7.0.15 addon is offered
Valkey 8.1.8 or the Redis 8 branch; forcing TLS, Debian's Valkey 8.1.1 in place of 8.1.8 (built without
TLS); on Valkey 8.1.1 forcing TLS, nothing (and it is told why); a Redis 6.2.7 addon is offered 6.2.14
first; an unknown addon is a clear error. The Redis 8 branch, which cannot be undone, is confirmed at the
CLI: refused without a terminal and without --yes, asked on a terminal, taken with --yes.

The module shares one engine and one API server; each app has one Starter addon (~1 s to provision)."""

from __future__ import annotations

import asyncio
import os
import pty
import secrets
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from tests.integration.api_client import cli, session, token, url
from tests.integration.conftest import remove_everything_of, running_addon, settings_for

RUN = secrets.token_hex(3)
APP, OLD_APP = f"it-dv-{RUN}", f"it-dvo-{RUN}"  # a 7.0.15 addon (the default), a 6.2.7 one
BRANCH_APP = f"it-dvb-{RUN}"  # a 7.0.15 addon taking the Redis 8 branch through the CLI
HELD_BACK = "the addon forces TLS, and the upgrade otherwise available (8.1.8) is built without TLS"
TLS_NOTE = "Valkey 8.1.8 is built without TLS: the addon stops serving TLS and its TLS URL goes away"
VALKEY_8 = {"version": "8.1.8", "engine": "valkey", "kind": "major", "tls": False, "note": TLS_NOTE}
VALKEY_8_TLS = {"version": "8.1.1", "engine": "valkey", "kind": "major", "tls": True, "note": ""}
BRANCH_NOTE = ("Redis 8.0.2 writes RDB format 12, which Valkey cannot read: once on it, the addon is never offered a "
               "Valkey version")
REDIS_8 = {"version": "8.0.2", "engine": "redis", "kind": "major", "tls": True, "note": BRANCH_NOTE}


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("version") / "home")) as running:
            yield running
    finally:
        for app in (APP, OLD_APP, BRANCH_APP):
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


async def test_redis_7_is_offered_valkey_8_or_redis_8_and_forcing_tls_only_builds_with_tls(engine, server, cli_env,
                                                                                               addon, capsys):
    status, body = await get_version(engine, server, APP)
    assert status == 200, body
    shown = body["version"]
    assert {k: shown[k] for k in ("addon", "engine", "version", "tls", "retired", "force_tls", "upgrades", "advice")} == {
        "addon": addon, "engine": "redis", "version": "7.0.15", "tls": True, "retired": False, "force_tls": False,
        "upgrades": [VALKEY_8, VALKEY_8_TLS, REDIS_8], "advice": None}
    assert [(n["version"], n["is_primary"]) for n in shown["nodes"]] == [("7.0.15", True)]
    out = await shown_by_cli(APP, capsys)
    assert out.splitlines()[:3] == [f"-----> {addon} runs Redis 7.0.15", "       TLS:       yes",
                                    "       Retired:   no"]
    assert cells(out) == [["VERSION", "ENGINE", "KIND", "TLS"], ["8.1.8", "valkey", "major", "no"],
                          ["8.1.1", "valkey", "major", "yes"], ["8.0.2", "redis", "major", "yes"]]
    assert out.splitlines()[-2:] == [f" !     8.1.8: {TLS_NOTE}", f" !     8.0.2: {BRANCH_NOTE}"]

    requested = await engine.database.change(APP, addon, "force-tls", True)
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    status, body = await get_version(engine, server, APP, addon)
    assert status == 200 and body["version"]["force_tls"] is True
    assert (body["version"]["upgrades"], body["version"]["advice"]) == ([VALKEY_8_TLS, REDIS_8], None)
    out = await shown_by_cli(APP, capsys)
    assert "       TLS:       yes (forced)" in out.splitlines()
    assert cells(out)[1:] == [["8.1.1", "valkey", "major", "yes"], ["8.0.2", "redis", "major", "yes"]]

    # On Debian's Valkey 8.1.1, forcing TLS: the later 8.1.8 is built without TLS, and the addon is told so.
    upgrading = await engine.database_version.upgrade(APP, addon)
    assert (await engine.wait_for_operation(upgrading["operation_id"], timeout=240))["status"] == "succeeded"
    status, body = await get_version(engine, server, APP, addon)
    assert (body["version"]["version"], body["version"]["upgrades"]) == ("8.1.1", [])
    assert body["version"]["advice"] == f"no upgrade available: {HELD_BACK}"
    out = await shown_by_cli(APP, capsys)
    assert out.splitlines()[0] == f"-----> {addon} runs Valkey 8.1.1" and "VERSION" not in out
    assert out.splitlines()[-1] == f" !     No upgrade available: {HELD_BACK}"


async def test_the_redis_8_branch_is_confirmed_at_the_cli_before_anything_starts(engine, server, cli_env, capsys):
    branch_addon = await running_addon(engine, BRANCH_APP)
    upgrade = ("--app", BRANCH_APP, "--addon", "redis", "database-upgrade", "8.0.2")
    # No terminal (pytest's stdin) and no --yes: refused, nothing requested.
    assert await cli(*upgrade) == 1
    out, err = capsys.readouterr()
    assert out == f" !     {BRANCH_NOTE}\n"
    assert err == (f"error: the upgrade to Redis 8.0.2 cannot be undone ({BRANCH_NOTE}): run it again with --yes to "
                   "confirm (there is no terminal to ask on); nothing was changed\n")
    # On a terminal, anything but yes: nothing requested either.
    status, screen = await on_a_terminal(["redis-addons", *upgrade], answer="no")
    assert status == 1, screen
    assert f"{BRANCH_NOTE}" in screen and "Upgrade to Redis 8.0.2? Type 'yes' to confirm: " in screen
    assert "error: the upgrade to Redis 8.0.2 was not confirmed: nothing was changed" in screen
    assert (await engine.addon(BRANCH_APP, branch_addon))["version"] == "7.0.15"
    assert [o for o in await engine.operations(branch_addon) if o["kind"] == "upgrade"] == []
    # --yes: taken, followed step by step.
    assert await cli(*upgrade, "--yes") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f" !     {BRANCH_NOTE}" and out[1].startswith("-----> Upgrading ")
    assert out[-1] == f"-----> {branch_addon} runs Redis 8.0.2"
    assert (await engine.addon(BRANCH_APP, branch_addon))["version"] == "8.0.2"


async def on_a_terminal(argv: list[str], answer: str) -> tuple[int, str]:
    """Run the installed CLI with a pseudo-terminal as its stdin/stdout, type `answer` once it asks; return its
    exit status and everything it showed."""
    main, child = pty.openpty()
    process = await asyncio.create_subprocess_exec(str(Path(sys.executable).parent / argv[0]), *argv[1:],
                                                   stdin=child, stdout=child, stderr=child)
    os.close(child)
    screen = b""
    loop = asyncio.get_running_loop()
    try:
        while b"to confirm: " not in screen:
            chunk = await asyncio.wait_for(loop.run_in_executor(None, read_some, main), timeout=30)
            if not chunk:
                break
            screen += chunk
        os.write(main, answer.encode() + b"\n")
        while chunk := await asyncio.wait_for(loop.run_in_executor(None, read_some, main), timeout=30):
            screen += chunk
        return await asyncio.wait_for(process.wait(), timeout=30), screen.decode(errors="replace")
    finally:
        os.close(main)
        if process.returncode is None:
            process.kill()
            await process.wait()


def read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other end is closed, the CLI has exited
        return b""


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
