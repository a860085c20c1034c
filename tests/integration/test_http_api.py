"""The HTTP API on a real engine (real event store, real Docker hosts answering the start-up check).

Nothing here starts a container: events are seeded by saving real Operation aggregates
through the engine's own event log, so these tests never compete for host ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat

import aiohttp
import pytest
import structlog.contextvars
import structlog.testing
from aiohttp.test_utils import TestClient, TestServer

from adapters.http import events as events_module
from adapters.http.app import make_app
from adapters.http.dashboard.guard import is_dashboard
from adapters.http.auth import ensure_token
from adapters.http.openapi import DOCUMENT
from adapters.http.serve import serve
from domain.operation import Operation
from engine import build
from tests.integration.conftest import settings_for
from tests.integration.conftest import running_addon


@pytest.fixture
async def client(engine):
    async with TestClient(TestServer(make_app(engine))) as test_client:
        test_client.token = engine.settings.token_file.read_text().strip()
        yield test_client


def auth(client) -> dict:
    return {"Authorization": f"Bearer {client.token}"}


async def seed(engine, app: str, count: int) -> list[int]:
    """Record `count` real events (Operation.Started) and return their positions."""
    positions = []
    for i in range(count):
        recordings = await engine.events.save(Operation(kind="provision", addon=f"{app}-{9000 + i}", app=app))
        positions += [r.notification.id for r in recordings]
    return positions


# -- auth -------------------------------------------------------------------


async def test_health_needs_no_token(client):
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic dXNlcjpwdw==", "Bearer "])
async def test_every_other_route_needs_the_bearer_token(client, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/addon_providers/redis/plans", headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["error"]["rule"] == "unauthorized"
    assert "wrong-token" not in json.dumps(body)


async def test_the_right_token_is_accepted(client):
    response = await client.get("/v1/addon_providers/redis/plans", headers=auth(client))
    assert response.status == 200
    plans = (await response.json())["plans"]
    assert {"id": "redis-starter-1024", "memory_mib": 1024, "data_nodes": 1, "backups": True, "available": True} in plans


async def test_the_token_file_is_created_owner_only_and_then_reused(engine, client):
    path = engine.settings.token_file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(client.token) >= 40
    assert ensure_token(path) == client.token


# -- errors -------------------------------------------------------------------


async def test_malformed_json_is_a_400_naming_the_problem(client, app_name):
    response = await client.post(f"/v1/apps/{app_name}/addons", data=b'{"plan_id": ', headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "malformed-json" and "malformed JSON" in error["message"]


async def test_a_body_that_is_not_an_object_is_a_400(client, app_name):
    response = await client.post(f"/v1/apps/{app_name}/addons", json=["redis-starter-256"], headers=auth(client))
    assert response.status == 400
    assert "object" in (await response.json())["error"]["message"]


async def test_an_oversized_body_is_a_413(client, app_name):
    response = await client.post(f"/v1/apps/{app_name}/addons", data=b"{" + b" " * 70_000 + b"}", headers=auth(client))
    assert response.status == 413
    assert (await response.json())["error"]["rule"] == "body-too-large"


async def test_a_missing_plan_is_a_400_naming_the_field(client, app_name):
    response = await client.post(f"/v1/apps/{app_name}/addons", json={"addon_provider_id": "redis"}, headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "missing-field" and error["field"] == "plan_id" and "plan_id" in error["message"]


async def test_an_unknown_plan_is_a_400_listing_the_valid_ones(engine, client, app_name):
    before = await engine.events.max_position()
    response = await client.post(f"/v1/apps/{app_name}/addons", json={"plan": "redis-starter-3000"}, headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "unknown-plan"
    assert "redis-starter-3000" in error["message"] and "redis-starter-1024" in error["message"]
    assert await engine.events.max_position() == before


async def test_an_unknown_app_is_a_404(client, app_name):
    for path in (f"/v1/apps/{app_name}/addons", f"/v1/apps/{app_name}/variables", f"/v1/apps/{app_name}/addons/{app_name}-1234"):
        response = await client.get(path, headers=auth(client))
        assert response.status == 404, path
        error = (await response.json())["error"]
        assert error["rule"] == "unknown-app" and app_name in error["message"]


async def test_an_invalid_app_name_is_a_400(client):
    response = await client.get("/v1/apps/Not_An_App/addons", headers=auth(client))
    assert response.status == 400
    assert (await response.json())["error"]["rule"] == "invalid-name"


async def test_unknown_routes_methods_and_operations_answer_json(client):
    cases = [("GET", "/v1/nowhere", 404, "not-found"), ("PUT", "/v1/events", 405, "method-not-allowed"),
             ("GET", "/v1/operations/not-a-uuid", 404, "unknown-operation"),
             ("GET", "/v1/addon_providers/memcached/plans", 404, "unknown-addon")]
    for method, path, status, rule in cases:
        response = await client.request(method, path, headers=auth(client))
        assert response.status == status, path
        assert response.content_type == "application/json"
        assert (await response.json())["error"]["rule"] == rule
        if status == 405:
            assert "GET" in response.headers["Allow"]


async def test_bad_query_parameters_are_400s(client):
    for query in ("after=-1", "after=x", "limit=0", "limit=5000"):
        response = await client.get(f"/v1/events?{query}", headers=auth(client))
        assert response.status == 400, query
        assert (await response.json())["error"]["rule"] == "invalid-query"


# -- plan change (PATCH an addon) ---------------------------------------------------


async def test_a_plan_change_without_a_plan_is_a_400_naming_the_field(client, app_name):
    response = await client.patch(f"/v1/apps/{app_name}/addons/{app_name}-1234", json={"planid": "x"}, headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "missing-field" and error["field"] == "plan_id" and "redis-starter-2048" in error["message"]


async def test_a_plan_change_of_an_unknown_addon_is_a_404(engine, client, app_name):
    await running_addon(engine, app_name)
    for addon in (f"{app_name}-1234", "other-app-4242"):
        response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}", json={"plan": "redis-starter-512"},
                                      headers=auth(client))
        assert response.status == 404, addon
        error = (await response.json())["error"]
        assert error["rule"] == "unknown-addon" and addon in error["message"]


async def test_a_plan_change_to_an_unknown_plan_is_a_400_listing_the_valid_ones(engine, client, app_name):
    addon = await running_addon(engine, app_name)
    before = await engine.events.max_position()
    response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}", json={"plan_id": "redis-starter-3000"},
                                  headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "unknown-plan"
    assert "redis-starter-3000" in error["message"] and "redis-starter-2048" in error["message"]
    assert await engine.events.max_position() == before


async def test_a_move_onto_a_cluster_plan_of_an_addon_forcing_tls_is_a_422_and_records_nothing(engine, client, app_name):
    addon = await running_addon(engine, app_name)
    forced = await engine.database.change(app_name, addon, "force-tls", True)
    assert (await engine.wait_for_operation(forced["operation_id"], timeout=60))["status"] == "succeeded"
    before = await engine.events.max_position()
    response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}", json={"plan_id": "redis-business-512"},
                                  headers=auth(client))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["rule"] == "plan-not-available" and "turn force TLS off first" in error["message"]
    assert await engine.events.max_position() == before


async def test_a_plan_change_to_the_same_plan_is_a_409(engine, client, app_name, monkeypatch):
    addon = await running_addon(engine, app_name, plan="redis-starter-512")
    response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}", json={"plan_id": "redis-starter-512"},
                                  headers=auth(client))
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["rule"] == "plan-change-to-another-plan" and "redis-starter-512" in error["message"]


async def test_a_plan_change_answers_202_with_the_running_operation_then_a_second_one_is_a_409(engine, client, app_name, monkeypatch):
    addon = await running_addon(engine, app_name)
    path = f"/v1/apps/{app_name}/addons/{addon}"
    response = await client.patch(path, json={"plan_id": "redis-starter-1024"}, headers=auth(client))
    assert response.status == 202
    body = await response.json()
    operation = body["operation"]
    assert response.headers["Location"] == f"/v1/operations/{operation['id']}"
    assert operation["kind"] == "change_plan" and operation["status"] == "running"
    assert [s["name"] for s in operation["steps"]] == [
        "stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"]
    assert body["addon"]["status"] == "changing-plan" and body["addon"]["plan"] == "redis-starter-256"
    assert body["addon"]["target_plan"] == "redis-starter-1024" and body["addon"]["target_host"] == "host-b"

    again = await client.patch(path, json={"plan_id": "redis-starter-512"}, headers=auth(client))
    assert again.status == 409
    assert (await again.json())["error"]["rule"] == "one-operation-per-addon"
    await engine.wait_for_operation(operation["id"], timeout=30)


async def test_a_plan_change_with_wait_answers_200_on_the_new_plan_with_the_step_timeline(engine, client, app_name, monkeypatch):
    addon = await running_addon(engine, app_name)
    response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}?wait=true",
                                  json={"plan": "redis-starter-2048"}, headers=auth(client))
    assert response.status == 200
    body = await response.json()
    assert body["addon"]["plan"] == "redis-starter-2048" and body["addon"]["host"] == "host-b"
    assert body["addon"]["status"] == "running"
    operation = body["operation"]
    assert operation["status"] == "succeeded" and operation["error"] is None and operation["compensation"] is None
    assert operation["started_at"] <= operation["finished_at"]
    for step in operation["steps"]:
        assert step["status"] == "succeeded" and step["attempts"] == 1 and step["detail"]
        assert operation["started_at"] <= step["started_at"] <= step["ended_at"] <= operation["finished_at"]
    assert operation["steps"][0]["detail"].startswith("saved 0 keys and stopped")

    fetched = await client.get(f"/v1/operations/{operation['id']}", headers=auth(client))
    assert (await fetched.json())["operation"] == operation


@pytest.mark.parametrize("engine", ["new-host-cannot-start"], indirect=True)
async def test_a_failed_plan_change_with_wait_answers_the_error_and_the_compensation(engine, client, app_name):
    addon = await running_addon(engine, app_name)
    response = await client.patch(f"/v1/apps/{app_name}/addons/{addon}?wait=true",
                                  json={"plan_id": "redis-starter-1024"}, headers=auth(client))
    assert response.status == 500
    body = await response.json()
    assert body["error"]["rule"] == "operation-failed"
    message = body["error"]["message"]
    assert message.startswith(f"change_plan of {addon} failed: wait_ready: not done within its deadline of 3 s")
    assert message.endswith("; then: back on host-a with plan redis-starter-256: new node removed, old node running")
    operation = body["operation"]
    assert [s["status"] for s in operation["steps"]] == [
        "succeeded", "succeeded", "failed", "skipped", "skipped", "skipped", "skipped"]
    assert operation["compensation"].startswith("back on host-a")
    assert body["addon"]["plan"] == "redis-starter-256" and body["addon"]["status"] == "running"


# -- apps -----------------------------------------------------------------------


async def test_an_app_is_registered_shown_and_its_restart_method_changed(client, app_name):
    docker = {"kind": "docker", "label": f"com.example.app={app_name}"}
    response = await client.post("/v1/apps", json={"name": app_name, "restart": docker}, headers=auth(client))
    assert response.status == 201
    assert response.headers["Location"] == f"/v1/apps/{app_name}"
    assert await response.json() == {"app": {"name": app_name, "restart": docker}}

    shown = await client.get(f"/v1/apps/{app_name}", headers=auth(client))
    assert shown.status == 200 and await shown.json() == {"app": {"name": app_name, "restart": docker}}
    listed = await client.get(f"/v1/apps/{app_name}/addons", headers=auth(client))
    assert listed.status == 200 and await listed.json() == {"addons": []}  # known now, with no addon yet

    hook = {"kind": "hook", "url": "http://127.0.0.1:9000/restart"}
    changed = await client.put(f"/v1/apps/{app_name}/restart", json=hook, headers=auth(client))
    assert changed.status == 200 and await changed.json() == {"app": {"name": app_name, "restart": hook}}
    again = await client.post("/v1/apps", json={"app": app_name, "restart": {"kind": "none"}}, headers=auth(client))
    assert again.status == 200  # known already: the method is replaced
    shown = await client.get(f"/v1/apps/{app_name}", headers=auth(client))
    assert (await shown.json())["app"]["restart"] == {"kind": "none"}


async def test_an_app_registered_without_a_restart_method_gets_none(client, app_name):
    response = await client.post("/v1/apps", json={"name": app_name}, headers=auth(client))
    assert response.status == 201
    assert (await response.json())["app"]["restart"] == {"kind": "none"}


async def test_an_app_with_addons_is_known_without_registering(engine, client, app_name):
    await running_addon(engine, app_name)
    response = await client.get(f"/v1/apps/{app_name}", headers=auth(client))
    assert response.status == 200
    assert await response.json() == {"app": {"name": app_name, "restart": {"kind": "none"}}}


@pytest.mark.parametrize("url", ["http://192.0.2.10:9000/restart", "http://example.com/restart", "ftp://127.0.0.1/x", "127.0.0.1:9000"])
async def test_a_hook_off_loopback_is_a_400_with_the_rule(engine, client, app_name, url):
    before = await engine.events.max_position()
    response = await client.post("/v1/apps", json={"name": app_name, "restart": {"kind": "hook", "url": url}},
                                 headers=auth(client))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "restart-method" and url in error["message"]
    assert await engine.events.max_position() == before


async def test_bad_restart_methods_are_400s_naming_the_problem(client, app_name):
    await client.post("/v1/apps", json={"name": app_name}, headers=auth(client))
    cases = [
        ("POST", "/v1/apps", {"restart": {"kind": "none"}}, "missing-field", "name"),
        ("POST", "/v1/apps", {"name": app_name, "restart": "docker"}, "invalid-field", "restart"),
        ("POST", "/v1/apps", {"name": app_name, "restart": {"label": "a=b"}}, "missing-field", "restart.kind"),
        ("POST", "/v1/apps", {"name": app_name, "restart": {"kind": "hook", "label": "a=b", "url": "http://127.0.0.1/"}},
         "invalid-field", "restart.label"),
        ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "none", "url": "http://127.0.0.1/"}, "invalid-field", "url"),
        ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "docker", "label": "a=b", "lable": "a=c"}, "invalid-field",
         "lable"),
        ("POST", "/v1/apps", {"name": app_name, "restart": {"kind": "hook", "URL": "http://127.0.0.1/"}},
         "invalid-field", "restart.URL"),
        ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "docker", "label": "no equals sign"}, "restart-method", None),
        ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "docker"}, "restart-method", None),
        ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "systemd"}, "restart-method", None),
        ("POST", "/v1/apps", {"name": "Bad_Name"}, "invalid-name", None),
    ]
    for method, path, body, rule, field in cases:
        response = await client.request(method, path, json=body, headers=auth(client))
        assert response.status == 400, body
        error = (await response.json())["error"]
        assert error["rule"] == rule and error.get("field") == field, (body, error)
        if field:
            assert repr(field) in error["message"]


async def test_an_unknown_app_is_a_404_for_show_and_restart_change(engine, client, app_name):
    before = await engine.events.max_position()
    for method, path, body in (("GET", f"/v1/apps/{app_name}", None),
                               ("PUT", f"/v1/apps/{app_name}/restart", {"kind": "none"})):
        response = await client.request(method, path, json=body, headers=auth(client))
        assert response.status == 404, method
        assert (await response.json())["error"]["rule"] == "unknown-app"
    assert await engine.events.max_position() == before


# -- operations -------------------------------------------------------------------


async def test_one_operation_carries_its_timeline_and_compensation(engine, client, app_name):
    operation = Operation(kind="provision", addon=f"{app_name}-9000", app=app_name)
    operation.start_step("create")
    operation.succeed_step("create", "container made")
    operation.start_step("start")
    operation.fail_step("start", "it would not start")
    operation.mark_compensated("container removed")
    await engine.events.save(operation)
    response = await client.get(f"/v1/operations/{operation.id}", headers=auth(client))
    body = (await response.json())["operation"]
    assert body["status"] == "failed" and body["error"] == "start: it would not start"
    assert body["compensation"] == "container removed" and body["finished_at"] >= body["started_at"]
    create, start, *rest = body["steps"]
    assert create["detail"] == "container made" and create["started_at"] <= create["ended_at"]
    assert start["status"] == "failed" and start["ended_at"]
    assert [(s["status"], s["started_at"], s["ended_at"]) for s in rest] == [("skipped", None, None)] * len(rest)


# -- OpenAPI ------------------------------------------------------------------


async def test_the_openapi_document_describes_every_route_and_nothing_else(client):
    response = await client.get("/v1/openapi.json", headers=auth(client))
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    served = {
        (route.resource.canonical, route.method.lower())
        for route in client.server.app.router.routes()
        if route.method != "HEAD" and not is_dashboard(route.resource.canonical)  # HTML pages, not the API
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert document == DOCUMENT


# -- events -------------------------------------------------------------------


async def test_events_come_in_pages_resumable_with_next(engine, client, app_name):
    positions = await seed(engine, app_name, 5)
    start = positions[0] - 1
    seen, after = [], start
    while True:
        response = await client.get(f"/v1/events?after={after}&limit=2", headers=auth(client))
        page = await response.json()
        if not page["events"]:
            assert page["next"] == after
            break
        assert len(page["events"]) <= 2
        seen += page["events"]
        after = page["next"]
        assert after == page["events"][-1]["id"]
    assert [e["id"] for e in seen] == positions
    assert {e["type"] for e in seen} == {"Operation.Started"}
    assert {e["data"]["app"] for e in seen} == {app_name}


async def read_frames(response, count: int, timeout: float = 5.0) -> list[dict]:
    """Parse Server-Sent Events until `count` events have arrived (comments and retry lines are kept too)."""
    frames, frame = [], {}

    async def read():
        nonlocal frame
        while sum(1 for f in frames if "id" in f) < count:
            line = (await response.content.readline()).decode()
            if line in ("\n", ""):
                if frame:
                    frames.append(frame)
                frame = {}
                if line == "":
                    return
                continue
            key, _, value = line.rstrip("\n").partition(":")
            frame[key or "comment"] = value.strip()

    await asyncio.wait_for(read(), timeout)
    return frames


async def test_the_event_stream_resumes_after_last_event_id_and_goes_on_live(engine, client, app_name):
    positions = await seed(engine, app_name, 4)
    headers = {**auth(client), "Last-Event-ID": str(positions[1])}
    async with client.get("/v1/events/stream?after=0", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        backlog = [f for f in await read_frames(response, 2) if "id" in f]
        assert [int(f["id"]) for f in backlog] == positions[2:]
        assert all(f["event"] == "Operation.Started" for f in backlog)
        assert json.loads(backlog[0]["data"])["id"] == positions[2]

        started = asyncio.get_running_loop().time()
        [later] = await seed(engine, app_name, 1)
        [live] = [f for f in await read_frames(response, 1, timeout=3) if "id" in f]
        assert int(live["id"]) == later
        assert asyncio.get_running_loop().time() - started < 1.5


async def test_the_event_stream_starts_after_the_query_position_without_a_header(engine, client, app_name):
    positions = await seed(engine, app_name, 3)
    async with client.get(f"/v1/events/stream?after={positions[0]}", headers=auth(client)) as response:
        frames = [f for f in await read_frames(response, 2) if "id" in f]
    assert [int(f["id"]) for f in frames] == positions[1:]


async def test_a_bad_last_event_id_is_a_400(client):
    response = await client.get("/v1/events/stream", headers={**auth(client), "Last-Event-ID": "abc"})
    assert response.status == 400
    assert "Last-Event-ID" in (await response.json())["error"]["message"]


async def test_an_idle_event_stream_sends_keep_alive_comments(engine, client, monkeypatch):
    monkeypatch.setattr(events_module, "KEEPALIVE_S", 0.2)
    after = await engine.events.max_position()
    async with client.get(f"/v1/events/stream?after={after}", headers=auth(client)) as response:
        line = b""
        async with asyncio.timeout(3):
            while not line.startswith(b":"):
                line = await response.content.readline()
    assert line == b": keep-alive\n"


# -- admin --------------------------------------------------------------------


async def test_replay_reports_that_read_models_match(engine, client, app_name):
    await seed(engine, app_name, 2)
    await engine.follower.wait_until(await engine.events.max_position())
    response = await client.post("/v1/admin/replay", headers=auth(client))
    assert response.status == 200
    result = await response.json()
    assert result["matches"] is True and result["differences"] == []
    assert result["rows"]["operations"] >= 2


# -- serve ----------------------------------------------------------------------


async def test_serve_writes_its_url_answers_and_stops_cleanly(tmp_path):
    engine = build(settings_for(tmp_path / "served", api_port=0))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(engine, stop=stop))
    url_file = engine.settings.home / "api-url"
    try:
        async with asyncio.timeout(20):
            while not url_file.exists():
                await asyncio.sleep(0.05)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        token = engine.settings.token_file.read_text().strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/health") as response:
                assert response.status == 200
            async with session.get(url + "/v1/events", headers={"Authorization": f"Bearer {token}"}) as response:
                # A fresh installation's log: the hosts file's hosts enrolled, nothing else.
                events = (await response.json())["events"]
                assert {e["type"].split(".")[0] for e in events} == {"Host", "HostRoster"}, events
                hosts = {h.name for h in engine.settings.hosts}
                assert {e["data"]["name"] for e in events if e["type"] == "Host.Added"} == hosts
            stream = await session.get(url + "/v1/events/stream", headers={"Authorization": f"Bearer {token}"})
            stop.set()
            async with asyncio.timeout(10):  # an open event stream does not hold the shutdown up
                await task
            stream.release()
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    assert not url_file.exists()


# -- no secret in errors or logs ------------------------------------------------------


async def test_an_unexpected_error_is_a_500_without_traceback_or_credentials(engine):
    async def boom(request):
        raise RuntimeError("could not reach redis://default:s3cret-pass@127.0.1.1:30000")

    app = make_app(engine)
    app.router.add_get("/v1/boom", boom)
    async with TestClient(TestServer(app)) as test_client:
        token = engine.settings.token_file.read_text().strip()
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            response = await test_client.get("/v1/boom", headers={"Authorization": f"Bearer {token}"})
        body = await response.text()
    assert response.status == 500
    error = json.loads(body)["error"]
    assert error["rule"] == "internal-error" and "request" in error["message"]
    assert "s3cret" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert token not in repr(logs) and "s3cret" not in repr(logs)
    assert any("RuntimeError" in e.get("traceback", "") for e in logs)  # the operator still gets the details
    assert {"method": "GET", "path": "/v1/boom", "status": 500}.items() <= logs[-1].items()


async def test_request_logs_carry_method_and_path_but_never_the_token(client):
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await client.get("/v1/operations", headers=auth(client))
        await client.get("/v1/operations", headers={"Authorization": "Bearer guessed-token"})
    assert [(e["method"], e["path"], e["status"]) for e in logs if e["event"] == "request"] == [
        ("GET", "/v1/operations", 200), ("GET", "/v1/operations", 401)]
    assert client.token not in repr(logs) and "guessed-token" not in repr(logs)
