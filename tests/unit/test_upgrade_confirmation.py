"""`database-upgrade` has a step with a note (the Redis 8 branch: RDB 12, never Valkey again) confirmed
before it asks for anything: on the terminal, or with --yes; without a terminal and without --yes it is
refused and nothing is requested. The CLI's parser and verb, over an API client answering as the server
would (tests/integration/test_database_version.py runs it against the real server)."""

from __future__ import annotations

import io

import pytest

from adapters.cli.client import CliError
from adapters.cli.main import parser

REDIS_8 = {"version": "8.0.2", "engine": "redis", "kind": "major", "tls": True,
           "note": "Redis 8.0.2 writes RDB format 12, which Valkey cannot read: once on it, the addon is never "
                   "offered a Valkey version"}
VALKEY_8 = {"version": "8.1.8", "engine": "valkey", "kind": "major", "tls": False, "note": ""}


class Requested(Exception):
    """The upgrade was requested: the test stops there (following the operation is the API's tests')."""


class Api:
    def __init__(self, upgrades: list[dict]):
        self.upgrades, self.posted = upgrades, []

    def get(self, path: str) -> dict:
        assert path == "/v1/apps/my-app/addons/redis/version"
        return {"version": {"upgrades": self.upgrades}}

    def post(self, path: str, body: dict) -> dict:
        self.posted.append((path, body))
        raise Requested


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def upgrade(api: Api, *argv: str, stdin=None, monkeypatch=None) -> None:
    args = parser().parse_args(["--app", "my-app", "--addon", "redis", "database-upgrade", *argv])
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", stdin)
    args.run(api, args)


def test_a_step_without_a_note_is_requested_without_a_question(monkeypatch, capsys):
    api = Api([VALKEY_8, REDIS_8])
    with pytest.raises(Requested):
        upgrade(api, stdin=io.StringIO(""), monkeypatch=monkeypatch)  # the next step: Valkey 8.1.8
    assert api.posted == [("/v1/apps/my-app/addons/redis/upgrade", {})] and capsys.readouterr().out == ""


def test_the_redis_8_branch_without_a_terminal_and_without_yes_is_refused_and_nothing_is_requested(monkeypatch, capsys):
    api = Api([VALKEY_8, REDIS_8])
    with pytest.raises(CliError) as refused:
        upgrade(api, "8.0.2", stdin=io.StringIO("yes\n"), monkeypatch=monkeypatch)
    assert str(refused.value) == (f"the upgrade to Redis 8.0.2 cannot be undone ({REDIS_8['note']}): run it again with "
                                  "--yes to confirm (there is no terminal to ask on); nothing was changed")
    assert api.posted == [] and REDIS_8["note"] in capsys.readouterr().out


def test_yes_takes_the_redis_8_branch_without_a_question(monkeypatch, capsys):
    api = Api([VALKEY_8, REDIS_8])
    with pytest.raises(Requested):
        upgrade(api, "8.0.2", "--yes", stdin=io.StringIO(""), monkeypatch=monkeypatch)
    assert api.posted == [("/v1/apps/my-app/addons/redis/upgrade", {"version": "8.0.2"})]
    assert capsys.readouterr().out == f" !     {REDIS_8['note']}\n"


@pytest.mark.parametrize("answer, requested", [("yes\n", True), ("y\n", True), ("\n", False), ("no\n", False), ("", False)])
def test_on_a_terminal_the_user_is_asked_and_only_yes_goes_on(monkeypatch, capsys, answer, requested):
    api = Api([REDIS_8])  # a Redis 8 step offered first (the next step by default)
    if requested:
        with pytest.raises(Requested):
            upgrade(api, stdin=Terminal(answer), monkeypatch=monkeypatch)
        assert api.posted == [("/v1/apps/my-app/addons/redis/upgrade", {})]
    else:
        with pytest.raises(CliError, match="^the upgrade to Redis 8.0.2 was not confirmed: nothing was changed$"):
            upgrade(api, stdin=Terminal(answer), monkeypatch=monkeypatch)
        assert api.posted == []
    assert capsys.readouterr().out == f" !     {REDIS_8['note']}\nUpgrade to Redis 8.0.2? Type 'yes' to confirm: "


def test_a_version_not_offered_is_left_to_the_api_to_refuse_in_the_rules_words(monkeypatch):
    api = Api([VALKEY_8, REDIS_8])
    with pytest.raises(Requested):
        upgrade(api, "8.1.1", stdin=io.StringIO(""), monkeypatch=monkeypatch)
    assert api.posted == [("/v1/apps/my-app/addons/redis/upgrade", {"version": "8.1.1"})]
