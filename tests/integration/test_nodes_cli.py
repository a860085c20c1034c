"""`nodes`: an addon's cluster as the operator sees it, through the real API and CLI — one data
node where the addon was provisioned, then the node a plan change moved it to, the old one
retired (shown with --all)."""

from __future__ import annotations

from tests.integration.api_client import cli
from tests.integration.conftest import running_addon
from tests.integration.test_cli import api  # noqa: F401 (the served API fixture)


def rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


async def test_nodes_shows_the_primary_and_after_a_plan_change_the_retired_one(engine, api, capsys, app_name):  # noqa: F811
    addon = await running_addon(engine, app_name)
    before = await engine.addon(app_name, addon)
    assert await cli("--app", app_name, "--addon", "redis", "nodes") == 0
    [node] = rows(capsys.readouterr().out)
    assert node[1:7] == ["data (primary)", before["host"], before["address"], f"{before['port']}, {before['tls_port']}",
                         before["version"], "running"]
    assert node[7].startswith("offset ")  # read live from the primary

    moved = await engine.change_plan(app_name, addon, "redis-starter-512")
    assert (await engine.wait_for_operation(moved["operation_id"], timeout=120))["status"] == "succeeded"
    after = await engine.addon(app_name, addon)
    assert await cli("--app", app_name, "--addon", addon, "nodes") == 0
    [node] = rows(capsys.readouterr().out)
    assert (node[1], node[2], node[6]) == ("data (primary)", after["host"], "running") and after["host"] != before["host"]
    assert await cli("--app", app_name, "--addon", addon, "nodes", "--all") == 0
    states = sorted((r[1], r[6]) for r in rows(capsys.readouterr().out))
    assert states == [("data", "retired"), ("data (primary)", "running")]


async def test_nodes_of_an_unknown_addon_is_one_line(api, capsys, app_name):  # noqa: F811
    assert await cli("--app", app_name, "--addon", "nope", "nodes") == 1
    assert capsys.readouterr().err.startswith("error: unknown app")
