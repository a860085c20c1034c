"""The `redis-addons` CLI against a real API server and engine (verbs that start no container)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from adapters.cli.main import main
from adapters.http.app import make_app


@pytest.fixture
async def api(engine, monkeypatch, tmp_path):
    server = TestServer(make_app(engine))
    await server.start_server()
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))  # no api-url/api-token there
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
    yield server
    await server.close()


async def cli(*argv: str) -> int:
    """Run the CLI in a thread: it blocks on HTTP while this loop serves it."""
    return await asyncio.to_thread(main, list(argv))


async def test_addons_plans_prints_a_boxed_table(api, capsys):
    assert await cli("addons-plans", "redis") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("+--") and lines[0] == lines[2] == lines[-1]
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["PLAN", "MEMORY", "NODES", "BACKUPS"]
    assert any(line.startswith("| redis-starter-1024 ") and "1024 MiB" in line for line in lines)
    assert any("redis-business-256 (not available)" in line for line in lines)


async def test_an_api_error_is_one_line_on_stderr_and_exit_code_1(api, capsys, app_name):
    assert await cli("--app", app_name, "addons") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: unknown app '{app_name}': it has never had an addon here\n"


async def test_an_unknown_plan_lists_the_valid_ones(api, capsys, app_name):
    assert await cli("--app", app_name, "addons-add", "redis", "redis-starter-3000") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown plan 'redis-starter-3000'") and "redis-starter-1024" in err
    assert "Traceback" not in err


async def test_app_verbs_need_an_app(api, capsys):
    assert await cli("env") == 1
    assert "--app APP env" in capsys.readouterr().err


async def test_replay_says_the_read_models_match(api, capsys):
    assert await cli("replay") == 0
    assert capsys.readouterr().out.startswith("-----> Read models match the event log")


async def test_a_wrong_token_is_reported(api, capsys, monkeypatch):
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", "not-the-token")
    assert await cli("operations") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid bearer token") and "not-the-token" not in err


async def test_a_missing_token_is_reported(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path))
    monkeypatch.delenv("REDIS_ADDONS_TOKEN", raising=False)
    assert await cli("operations") == 1
    assert capsys.readouterr().err.startswith("error: no API token: set REDIS_ADDONS_TOKEN")


async def test_an_unreachable_server_is_reported(capsys, monkeypatch, unused_tcp_port):
    monkeypatch.setenv("REDIS_ADDONS_API", f"http://127.0.0.1:{unused_tcp_port}")
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", "whatever")
    assert await cli("addons-plans", "redis") == 1
    assert capsys.readouterr().err == (
        f"error: cannot reach the redis-addons API at http://127.0.0.1:{unused_tcp_port}: "
        "is `make run` (redis-addons serve) running?\n"
    )
