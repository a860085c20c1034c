"""`redis-addons login` against a real API server: a token is checked before it is recorded, and the
CLI then finds the server from any directory."""

from __future__ import annotations

import io
import sys

import pytest
from aiohttp.test_utils import TestServer

from adapters.cli import config
from adapters.http.app import make_app
from tests.integration.api_client import cli, token


@pytest.fixture
async def server(engine, monkeypatch, tmp_path):
    """The API on loopback, and a user with no variables set, in a directory with no var/."""
    served = TestServer(make_app(engine))
    await served.start_server()
    for name in ("REDIS_ADDONS_API", "REDIS_ADDONS_TOKEN", "REDIS_ADDONS_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    yield str(served.make_url("")).rstrip("/")
    await served.close()


def typed(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text + "\n"))


async def test_login_records_the_server_and_the_cli_then_works_from_anywhere(engine, server, monkeypatch, capsys):
    typed(monkeypatch, token(engine))
    assert await cli("login", "--api", server) == 0
    assert "Logged in to" in capsys.readouterr().out
    assert config.load() == {"api": server, "token": token(engine), "recorded_by": "login"}
    assert config.config_file().stat().st_mode & 0o777 == 0o600

    assert await cli("addons-plans", "redis") == 0
    assert "redis-starter-1024" in capsys.readouterr().out

    assert await cli("logout") == 0
    assert await cli("addons-plans", "redis") == 1
    assert "no API token" in capsys.readouterr().err


async def test_a_wrong_token_is_refused_and_not_recorded(engine, server, monkeypatch, capsys):
    typed(monkeypatch, "not-the-token")
    assert await cli("login", "--api", server) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid bearer token") and "not-the-token" not in err
    assert not config.config_file().exists()


async def test_login_refuses_a_url_that_is_not_http_and_an_empty_token(server, monkeypatch, capsys):
    typed(monkeypatch, "x")
    assert await cli("login", "--api", "127.0.0.1:8470") == 1
    assert "is not an http(s) URL" in capsys.readouterr().err
    typed(monkeypatch, "")
    assert await cli("login", "--api", server) == 1
    assert "no API token given" in capsys.readouterr().err
    assert not config.config_file().exists()
