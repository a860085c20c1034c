"""The maintenance verbs of the CLI (adapters/cli/maintenance.py) over a recorded API: what they ask and
what they print."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from adapters.cli.client import ApiError, CliError
from adapters.cli.database_version import database_version
from adapters.cli.maintenance import database_maintenance_window, maintenance

WINDOW = {"day": "sunday", "hour": 3, "minute": 0, "zone": "Europe/Paris",
          "description": "sundays at 3:00 Europe/Paris, for an hour", "next_opening": "2026-12-06T02:00:00+00:00"}


class Recorded:
    """The API client: each request is recorded and answered from `answers` (an ApiError is raised)."""

    def __init__(self, **answers):
        self.answers, self.asked = answers, []

    def _answer(self, method: str, path: str, body=None, **query):
        self.asked.append((method, path, body, query))
        answer = self.answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, path, **query):
        return self._answer("GET", path, **query)

    def put(self, path, body, **query):
        return self._answer("PUT", path, body, **query)

    def delete(self, path, **query):
        return self._answer("DELETE", path, **query)


def test_the_listing_names_each_outdated_addon_its_nodes_and_its_window(capsys):
    rows = [{"app": "shop", "addon": "shop-3030", "version": "7.0.15", "nodes": [{"id": "n1"}, {"id": "n2"}],
             "window": WINDOW},
            {"app": "blog", "addon": "blog-4040", "version": "6.2.14", "nodes": [{"id": "n3"}], "window": None}]
    api = Recorded(GET={"addons": rows})
    assert maintenance(api, SimpleNamespace(app=None)) == 0
    assert api.asked == [("GET", "/v1/maintenance", None, {})]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("-----> A security update is available for these addons")
    assert out[4:6] == ["| shop | shop-3030 | 7.0.15  | n1, n2         | sundays at 3:00 Europe/Paris, for an hour |",
                        "| blog | blog-4040 | 6.2.14  | n3             | none                                      |"]


def test_an_empty_listing_says_every_build_is_current(capsys):
    api = Recorded(GET={"addons": []})
    assert maintenance(api, SimpleNamespace(app="shop")) == 0
    assert api.asked == [("GET", "/v1/maintenance", None, {"app": "shop"})]
    assert capsys.readouterr().out == "-----> Every addon runs the current build of its version\n"


def window_args(at: str | None = None, off: bool = False):
    return SimpleNamespace(app="shop", addon="redis", at=at, off=off)


def test_the_window_is_set_in_this_machines_zone(capsys, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    api = Recorded(PUT={"window": WINDOW})
    assert database_maintenance_window(api, window_args(at="sunday 3")) == 0
    assert api.asked == [("PUT", "/v1/apps/shop/addons/redis/maintenance_window",
                          {"window_at": "sunday 3", "local_zone": "Europe/Paris"}, {})]
    assert capsys.readouterr().out.splitlines() == [
        "-----> Maintenance window: sundays at 3:00 Europe/Paris, for an hour",
        "       Next opening: 2026-12-06T02:00:00+00:00"]


def test_a_window_the_server_cannot_read_is_named_by_its_option(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    refused = ApiError(400, "invalid-maintenance-window", "field 'window_at': unknown day 'funday'",
                       {"error": {"field": "window_at"}})
    with pytest.raises(CliError, match="^--at: unknown day 'funday'$"):
        database_maintenance_window(Recorded(PUT=refused), window_args(at="funday 3"))


def test_no_window_is_said_and_off_removes_it(capsys):
    assert database_maintenance_window(Recorded(GET={"window": None}), window_args()) == 0
    api = Recorded(DELETE={"window": None})
    assert database_maintenance_window(api, window_args(off=True)) == 0
    assert api.asked == [("DELETE", "/v1/apps/shop/addons/redis/maintenance_window", None, {})]
    assert capsys.readouterr().out.splitlines() == [
        "-----> No maintenance window: run database-maintenance when a security update is available"] * 2


def test_database_version_shows_the_build_and_the_security_update(capsys):
    shown = {"addon": "shop-3030", "engine": "redis", "version": "7.0.15", "tls": True, "retired": False,
             "force_tls": False, "upgrades": [], "advice": None, "build_outdated": True,
             "nodes": [{"id": "n1", "version": "7.0.15", "is_primary": True, "build": "outdated"}],
             "maintenance": "a security update of 7.0.15 is available: run database-maintenance"}
    assert database_version(Recorded(GET={"version": shown}), SimpleNamespace(app="shop", addon="redis")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[3] == "       Build:     outdated"
    assert out[-1] == " !     A security update of 7.0.15 is available: run database-maintenance"
