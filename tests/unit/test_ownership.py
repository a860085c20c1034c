"""The HTTP layer's reach of a token scoped to apps (adapters/http/ownership.py), over the in-memory ports:
another app's things answer the very 404 of things that do not exist, lists and the event log keep the
token's apps, the operator's routes are refused with a 403 naming why, and a route added later is checked
by default (by the names in its path)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.http import events as event_routes
from adapters.http.app import make_app
from adapters.http.ownership import _webhook
from domain.addon import Addon
from domain.operation import Operation
from tests.unit.engine_fakes import APP, caught_up, finished

OTHER = "other-app"


@pytest.fixture
async def api(engine):
    mine = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    theirs = await finished(engine, await engine.add_addon(OTHER, "redis-starter-256"))
    await caught_up(engine)
    app = make_app(engine, token="the-token", scrape_token="the-scrape-token")

    async def answer(request):
        return web.json_response({"ok": True})

    async def operation(request):
        return web.json_response(await engine.operation(request.match_info["operation_id"]))

    # Routes another helper might add later, declaring nothing in adapters/http/ownership.py
    app.router.add_get("/v1/apps/{app}/brand-new", answer)
    app.router.add_get("/v1/operations/{operation_id}/brand-new", operation)
    app.router.add_get("/v1/brand-new", answer)
    async with TestClient(TestServer(app)) as client:
        created = await engine.access.create("ci", [APP])
        client.scoped = {"Authorization": f"Bearer {created['secret']}"}
        client.operator = {"Authorization": "Bearer the-token"}
        client.token_id = created["token"]["id"]
        client.mine, client.theirs = mine, theirs
        yield client


async def answer(client, method, path, headers) -> tuple[int, dict]:
    async with client.request(method, path, headers=headers) as response:
        return response.status, await response.json()


async def test_another_apps_things_answer_as_things_that_do_not_exist(api):
    nowhere = str(uuid.uuid4())
    for path, word, stand_in in [  # the path, the other app's name or ID in it, a name or ID that exists nowhere
        (f"/v1/apps/{OTHER}/addons", OTHER, "never-app"),
        (f"/v1/apps/{OTHER}/addons/{api.theirs['addon']}", OTHER, "never-app"),
        (f"/v1/apps/{OTHER}/brand-new", OTHER, "never-app"),
        (f"/v1/operations/{api.theirs['id']}", api.theirs["id"], nowhere),
    ]:
        seen = await answer(api, "GET", path, api.scoped)
        absent = await answer(api, "GET", path.replace(word, stand_in), api.scoped)
        assert seen[0] == absent[0] == 404, (path, seen)
        assert json.dumps(seen[1]) == json.dumps(absent[1]).replace(stand_in, word), (path, seen, absent)
    assert (await answer(api, "GET", f"/v1/operations/{api.theirs['id']}/brand-new", api.scoped))[0] == 404
    assert (await answer(api, "GET", f"/v1/operations/{api.mine['id']}/brand-new", api.scoped))[0] == 200
    assert (await answer(api, "GET", f"/v1/apps/{APP}/addons/{api.mine['addon']}", api.scoped))[0] == 200


async def test_lists_and_the_event_log_keep_the_tokens_apps(api):
    _, listed = await answer(api, "GET", "/v1/operations", api.scoped)
    assert {o["app"] for o in listed["operations"]} == {APP}
    _, everything = await answer(api, "GET", "/v1/events?limit=1000", api.operator)
    _, mine = await answer(api, "GET", "/v1/events?limit=1000", api.scoped)
    assert mine["next"] == everything["next"] and 0 < len(mine["events"]) < len(everything["events"])
    assert all(OTHER not in str(e) for e in mine["events"])
    assert any(OTHER in str(e) for e in everything["events"])


@pytest.mark.parametrize("method, path", [("GET", "/v1/tokens"), ("POST", "/v1/tokens"), ("GET", "/v1/webhooks"),
                                          ("POST", "/v1/admin/replay"), ("GET", "/metrics"), ("GET", "/v1/brand-new"),
                                          ("POST", "/v1/apps"), ("PUT", f"/v1/apps/{APP}/restart")])
async def test_the_operators_routes_are_refused_naming_why(api, method, path):
    status, body = await answer(api, method, path, api.scoped)
    assert status == 403 and body["error"]["rule"] == "operator-only" and "installation's token" in body["error"]["message"]


async def test_a_revoked_token_is_refused_at_once(api):
    assert (await answer(api, "GET", "/v1/operations", api.scoped))[0] == 200
    assert (await answer(api, "DELETE", f"/v1/tokens/{api.token_id}", api.operator))[0] == 200
    status, body = await answer(api, "GET", "/v1/operations", api.scoped)
    assert status == 401 and f"token {api.token_id} was revoked" in body["error"]["message"]


async def test_an_operators_webhook_is_no_apps_and_answers_as_a_missing_one(api, engine):
    operators = (await engine.webhooks.register("http://127.0.0.1:9/all", None))["webhook"]["id"]
    nowhere = str(uuid.uuid4())
    seen = await answer(api, "DELETE", f"/v1/apps/{APP}/webhooks/{operators}", api.scoped)
    absent = await answer(api, "DELETE", f"/v1/apps/{APP}/webhooks/{nowhere}", api.scoped)
    assert seen[0] == absent[0] == 404 and json.dumps(seen[1]) == json.dumps(absent[1]).replace(nowhere, operators)
    assert [w["id"] for w in await engine.webhooks.list()] == [operators]


async def test_the_scrape_token_reads_the_metrics_and_nothing_else(api):
    scraper = {"Authorization": "Bearer the-scrape-token"}
    async with api.get("/metrics", headers=scraper) as response:
        assert response.status == 200, await response.text()
    status, body = await answer(api, "GET", "/v1/operations", scraper)
    assert status == 403 and body["error"]["rule"] == "scrape-token-metrics-only"


async def test_the_id_of_an_aggregate_that_is_no_operation_is_an_unknown_operation(api):
    """An addon's ID is a uuid5 of its name: anyone can compute it; it must not tell the addon exists."""
    nowhere = str(uuid.uuid4())
    for addon in (api.theirs["addon"], api.mine["addon"]):
        addon_id = str(Addon.id_for(addon))
        for method, path in (("GET", "/v1/operations/{}"), ("POST", "/v1/operations/{}/retry")):
            for headers in (api.scoped, api.operator):
                seen = await answer(api, method, path.format(addon_id), headers)
                absent = await answer(api, method, path.format(nowhere), headers)
                assert seen[0] == absent[0] == 404, (method, addon, seen)
                assert json.dumps(seen[1]) == json.dumps(absent[1]).replace(nowhere, addon_id)


async def test_a_backup_the_read_models_have_not_shown_yet_is_still_its_apps(api, engine, monkeypatch):
    """Read models behind (or their disk full): the owner comes from the event store, so a restore under the
    token's own addon of another app's backup is answered as for a backup that does not exist."""
    await finished(engine, theirs := await engine.backups.create(OTHER, api.theirs["addon"]))
    await caught_up(engine)
    monkeypatch.setattr(engine.views, "backup", lambda backup_id: None)  # not projected yet
    restore = f"/v1/apps/{APP}/addons/{api.mine['addon']}/backups/{{}}/restore"
    nowhere = str(uuid.uuid4())
    seen = await answer(api, "POST", restore.format(theirs["backup_id"]), api.scoped)
    absent = await answer(api, "POST", restore.format(nowhere), api.scoped)
    assert seen[0] == absent[0] == 404, seen
    assert json.dumps(seen[1]) == json.dumps(absent[1]).replace(nowhere, theirs["backup_id"])
    assert [o["kind"] for o in await engine.operations(api.mine["addon"])] == ["provision"]


async def test_a_webhook_is_found_by_its_id_to_tell_its_owner(api, engine):
    theirs = (await engine.webhooks.register("http://127.0.0.1:9/theirs", OTHER))["webhook"]["id"]
    assert await _webhook(engine, theirs) == OTHER
    assert await _webhook(engine, theirs.upper()) == OTHER
    assert await _webhook(engine, str(uuid.uuid4())) is None


async def test_other_apps_events_keep_no_keep_alive_away_from_a_scoped_stream(api, engine, monkeypatch):
    """A busy other app (events the token never sees) must not keep the stream silent: a proxy would cut it."""
    monkeypatch.setattr(event_routes, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(event_routes, "POLL_S", 0.02)

    async def busy_other_app():
        while True:
            await engine.events.save(Operation(kind="provision", addon=api.theirs["addon"], app=OTHER))
            await asyncio.sleep(0.02)

    writer = asyncio.create_task(busy_other_app())
    try:
        position = (await engine.event_page(after=0, limit=100000))[-1]["id"]
        async with api.get(f"/v1/events/stream?after={position}", headers=api.scoped) as response:
            async with asyncio.timeout(5):
                while (line := await response.content.readline()) != b": keep-alive\n":
                    assert OTHER not in line.decode(), line
    finally:
        writer.cancel()


async def test_a_scoped_token_may_not_point_a_webhook_at_this_machine_and_the_operator_may(api):
    """Loopback is where this machine's own unauthenticated services listen (another app's restart hook)."""
    for spelling in ("http://127.0.0.1:9/hook", "https://localhost:9/hook", "https://127.1:9/hook",
                     "http://[::1]:9/hook", "https://2130706433:9/hook"):
        async with api.post(f"/v1/apps/{APP}/webhooks", json={"url": spelling}, headers=api.scoped) as response:
            refused = await response.json()
            assert response.status == 403, (spelling, refused)
            assert refused["error"]["rule"] == "loopback-webhook-needs-operator", refused
            assert "only the operator" in refused["error"]["message"]
    _, listed = await answer(api, "GET", f"/v1/apps/{APP}/webhooks", api.operator)
    assert listed["webhooks"] == []  # nothing recorded
    async with api.post(f"/v1/apps/{APP}/webhooks", json={"url": "http://127.0.0.1:9/hook"},
                        headers=api.operator) as response:
        assert response.status == 201, await response.text()
