"""The `redis-addons` CLI against a real API server and engine (verbs that start no container)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from domain.operation import Operation
from tests.integration.api_client import cli
from tests.integration.conftest import running_addon


@pytest.fixture
async def api(engine, monkeypatch, tmp_path):
    server = TestServer(make_app(engine))
    await server.start_server()
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))  # no api-url/api-token there
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
    yield server
    await server.close()


async def test_addons_plans_prints_a_boxed_table(api, capsys):
    assert await cli("addons-plans", "redis") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("+--") and lines[0] == lines[2] == lines[-1]
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["PLAN", "MEMORY", "NODES", "BACKUPS"]
    assert any(line.startswith("| redis-starter-1024 ") and "1024 MiB" in line for line in lines)
    assert any(line.startswith("| redis-business-256 ") and "| 2 " in line for line in lines)  # two data nodes


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


# -- addons-upgrade (plan change) ------------------------------------------------


async def test_addons_upgrade_prints_each_step_as_it_ends_then_the_new_plan(engine, api, capsys, app_name, monkeypatch):
    addon = await running_addon(engine, app_name)
    assert await cli("--app", app_name, "addons-upgrade", addon, "redis-starter-2048") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"-----> Addon {addon} is being upgraded to redis-starter-2048 ..."
    assert lines[-1] == f"-----> Addon {addon} is now on redis-starter-2048 (host-b)"
    steps = lines[1:-1]
    assert [line.split()[0] for line in steps] == [
        "stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"]
    assert steps[0].startswith("       stop         done   saved 0 keys and stopped redis-addons-")
    assert steps[0].endswith(" on host-a (" + steps[0].rsplit("(", 1)[1])  # then its duration
    assert steps[0].rstrip(")").endswith(" s")
    assert "copied to host-b; started with 2048 MiB" in steps[1]
    assert all(line.split()[1] == "done" for line in steps)


async def test_addons_upgrade_to_a_smaller_plan_says_downgraded(engine, api, capsys, app_name, monkeypatch):
    addon = await running_addon(engine, app_name, plan="redis-starter-1024")
    assert await cli("--app", app_name, "addons-upgrade", addon, "redis-starter-512") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"-----> Addon {addon} is being downgraded to redis-starter-512 ..."
    assert lines[-1] == f"-----> Addon {addon} is now on redis-starter-512 (host-b)"


@pytest.mark.parametrize("engine", ["new-host-cannot-start"], indirect=True)
async def test_a_failed_addons_upgrade_names_the_step_and_what_was_undone(engine, api, capsys, app_name):
    addon = await running_addon(engine, app_name)
    assert await cli("--app", app_name, "addons-upgrade", addon, "redis-starter-1024") == 1
    captured = capsys.readouterr()
    assert [line.split()[:2] for line in captured.out.splitlines()[1:]] == [
        ["stop", "done"], ["start_new", "done"], ["wait_ready", "failed"]]
    first, second = captured.err.splitlines()
    assert first.startswith("error: plan change failed at wait_ready: not done within its deadline of 3 s (last error: ")
    assert second == "       back on host-a with plan redis-starter-256: new node removed, old node running"
    assert await cli("--app", app_name, "addons") == 0
    assert f"| {addon} " in (row := capsys.readouterr().out) and "redis-starter-256" in row and "running" in row


async def test_addons_upgrade_errors_are_one_line(engine, api, capsys, app_name):
    addon = await running_addon(engine, app_name)
    assert await cli("--app", app_name, "addons-upgrade", f"{app_name}-1234", "redis-starter-512") == 1
    assert capsys.readouterr().err == f"error: app '{app_name}' has no addon '{app_name}-1234'\n"
    assert await cli("--app", app_name, "addons-upgrade", addon, "redis-starter-3000") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown plan 'redis-starter-3000'") and "redis-starter-2048" in err
    assert await cli("addons-upgrade", addon, "redis-starter-512") == 1
    assert "--app APP addons-upgrade" in capsys.readouterr().err


# -- apps ---------------------------------------------------------------------------


async def test_apps_register_show_and_change(api, capsys, app_name):
    label = f"com.example.app={app_name}"
    assert await cli("apps-register", app_name, "--restart", "docker", "--label", label) == 0
    assert capsys.readouterr().out == (
        f"-----> App {app_name} will be restarted by recreating its Docker containers labelled {label} "
        "(on every host) with the new environment\n")
    assert await cli("--app", app_name, "apps-info") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"-----> App {app_name}",
        f"       Restart: docker (containers labelled {label}, recreated with the new environment)",
        "       Addons:  none",
    ]
    assert await cli("--app", app_name, "apps-register", "--url", "http://127.0.0.1:9000/restart") == 0
    assert capsys.readouterr().out == (
        f"-----> App {app_name} will be restarted by a POST of its new environment to http://127.0.0.1:9000/restart\n")
    assert await cli("apps-register", app_name, "--restart", "none") == 0
    assert capsys.readouterr().out.startswith(f"-----> App {app_name} will not be restarted by redis-addons (restart method: none)")
    assert await cli("--app", app_name, "apps-info") == 0
    assert "Restart: none" in capsys.readouterr().out


async def test_apps_info_lists_the_addons(engine, api, capsys, app_name):
    addon = await running_addon(engine, app_name)
    assert await cli("--app", app_name, "apps-info") == 0
    out = capsys.readouterr().out
    assert "Restart: none (the app is not restarted by redis-addons)" in out
    assert f"Addons:  {addon} (redis-starter-256, running)" in out


async def test_apps_register_refuses_a_hook_off_loopback_and_bad_arguments(api, capsys, app_name):
    assert await cli("apps-register", app_name, "--restart", "hook", "--url", "http://192.0.2.10/restart") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: hook URL 'http://192.0.2.10/restart' is not on loopback")
    assert await cli("apps-register", app_name, "--restart", "docker", "--url", "http://127.0.0.1/") == 1
    assert "'restart.url' does not apply to restart kind 'docker'" in capsys.readouterr().err
    assert await cli("apps-register", "--restart", "none") == 1
    assert "needs an app" in capsys.readouterr().err
    assert await cli("--app", "other-app", "apps-register", app_name) == 1
    assert "two app names" in capsys.readouterr().err
    assert await cli("--app", app_name, "apps-info") == 1
    assert capsys.readouterr().err == f"error: unknown app '{app_name}': it has never had an addon here\n"


# -- operations -----------------------------------------------------------------------


async def test_operations_show_a_plan_change_and_one_operation_as_a_timeline(engine, api, capsys, app_name, restart_hook):
    addon = await running_addon(engine, app_name)
    refusing, _ = await restart_hook(400)
    await engine.register_app(app_name, restart="hook", url=refusing)
    assert await cli("--app", app_name, "addons-upgrade", addon, "redis-starter-512") == 1
    capsys.readouterr()

    assert await cli("operations", "--addon", addon) == 0
    listing = capsys.readouterr().out
    [row] = [line for line in listing.splitlines() if "change_plan" in line]
    assert ("stop:ok start_new:ok wait_ready:ok verify:ok publish:ok cleanup:ok restart_app:FAILED") in row
    assert "failed: restart_app: restart hook answered 400: a 2xx is expected (redirects are not followed) (then: nothing undone: the addon runs on its new plan" in row
    short_id = row.split("|")[1].strip()

    assert await cli("operations", "--id", short_id) == 0
    lines = capsys.readouterr().out.splitlines()
    [operation] = [op for op in await engine.operations(addon) if op["kind"] == "change_plan"]
    assert lines[0] == f"-----> Operation {operation['id']} (change_plan of {addon}, app {app_name})"
    assert lines[1] == "       Status:       failed"
    assert lines[2] == "       Requested by: operator (operator)"  # the CLI used the installation's token
    assert lines[3].startswith("       Started:      20") and lines[3].endswith(" UTC")
    assert lines[4].startswith("       Finished:     20") and lines[4].endswith(" s)")
    assert lines[5] == "       Error:        restart_app: restart hook answered 400: a 2xx is expected (redirects are not followed)"
    assert lines[6].startswith("       Compensation: nothing undone: the addon runs on its new plan")
    header = [c.strip() for c in lines[8].strip("|").split("|")]
    assert header == ["STEP", "STATUS", "ATTEMPTS", "STARTED (UTC)", "ENDED (UTC)", "DURATION", "DETAIL"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[10:-1]]
    assert [r[:3] for r in rows] == [[s, "succeeded", "1"] for s in (
        "stop", "start_new", "wait_ready", "verify", "publish", "cleanup")] + [["restart_app", "failed", "1"]]
    for name, status, attempts, started, ended, took, detail in rows:
        assert len(started) == len("12:34:56.789") and started <= ended and took.endswith(" s") and detail
    assert rows[4][-1] == "now redis-starter-512 on host-b; REDIS_URL and SCALINGO_REDIS_URL changed"

    assert await cli("operations", "--id", operation["id"]) == 0
    assert capsys.readouterr().out.splitlines() == lines


async def test_operations_id_refuses_unknown_and_ambiguous_prefixes(engine, api, capsys, app_name):
    for i in range(17):  # 17 ids: two of them share their first hex digit
        await engine.events.save(Operation(kind="provision", addon=f"{app_name}-{9000 + i}", app=app_name))
    await engine.follower.wait_until(await engine.events.max_position())  # all 17 are listed
    ids = [o["id"] for o in await engine.operations()]
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    assert await cli("operations", "--id", shared) == 1
    assert "operations have an ID starting with" in capsys.readouterr().err
    assert await cli("operations", "--id", "zz") == 1
    assert capsys.readouterr().err == "error: no operation has an ID starting with 'zz'; see `redis-addons operations`\n"
    assert await cli("operations", "--id", "00000000-0000-0000-0000-000000000000") == 1
    assert capsys.readouterr().err.startswith("error: unknown operation")
