"""Access tokens (domain/access_token.py, engine/access.py) and who asked (engine/audit.py), over the
in-memory ports: each rule refuses with its reason and records nothing; the secret is shown once and kept
nowhere; every event says who asked, and reads back so after a reload; older events have no requester."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from domain.access_token import AccessTokens, InvalidAccessToken, UnknownAccessToken
from engine import audit
from engine.access import secret_hash
from engine.described import event_as_dict
from adapters.http.app import make_app
from tests.unit.engine_fakes import APP, a_running_addon, caught_up, finished, started_engine

AT = "2026-12-02T10:00:00+00:00"
SHA = "a" * 64


def test_a_token_is_recorded_with_the_sha256_of_its_secret_and_revoked_once():
    tokens = AccessTokens()
    token = tokens.issue("tok-1", " ci ", ["my-app", "other-app", "my-app"], ["metrics"], SHA, AT)
    assert token == {"id": "tok-1", "name": "ci", "apps": ["my-app", "other-app"], "grants": ["metrics"],
                     "secret_sha256": SHA, "created_at": AT, "revoked_at": None}
    tokens.withdraw("tok-1", "2026-12-02T11:00:00+00:00")
    tokens.withdraw("tok-1", "2026-12-02T12:00:00+00:00")  # again: nothing more recorded
    assert [type(e).__name__ for e in tokens.collect_events()] == ["Opened", "TokenCreated", "TokenRevoked"]
    assert tokens.tokens["tok-1"]["revoked_at"] == "2026-12-02T11:00:00+00:00"


@pytest.mark.parametrize("name, apps, grants, field, words", [
    ("", ["my-app"], [], "name", "needs a name"),
    ("   ", ["my-app"], [], "name", "needs a name"),
    ("x" * 65, ["my-app"], [], "name", "at most 64"),
    ("ci", [], [], "apps", "at least one app"),
    ("ci", "my-app", [], "apps", "at least one app"),
    ("ci", ["My App"], [], "apps", "invalid app name 'My App'"),
    ("ci", ["my-app"], ["admin"], "grants", "may be granted metrics"),
])
def test_a_bad_token_is_refused_naming_the_problem_and_records_nothing(name, apps, grants, field, words):
    tokens = AccessTokens()
    tokens.collect_events()
    with pytest.raises(InvalidAccessToken, match=words) as refused:
        tokens.issue("tok-1", name, apps, grants, SHA, AT)
    assert refused.value.field == field and not tokens.collect_events() and not tokens.tokens


def test_only_a_hash_is_recorded_and_an_unknown_token_is_named():
    tokens = AccessTokens()
    with pytest.raises(InvalidAccessToken, match="SHA-256"):
        tokens.issue("tok-1", "ci", ["my-app"], [], "the-secret-itself", AT)
    with pytest.raises(UnknownAccessToken, match="unknown token 'tok-9'"):
        tokens.withdraw("tok-9", AT)


async def test_the_service_shows_the_secret_once_finds_it_by_its_hash_and_refuses_it_once_revoked(engine):
    await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    with pytest.raises(InvalidAccessToken, match="unknown app 'nowhere-app'"):
        await engine.access.create("ci", [APP, "nowhere-app"])
    assert await engine.access.list() == []
    created = await engine.access.create("ci", [APP])
    secret, token = created["secret"], created["token"]
    assert "secret_sha256" not in token and await engine.access.list() == [token]
    access, _ = await engine.access.find(secret)
    assert access.apps == {APP} and access.requester == audit.Requester(token["id"], "ci")
    assert await engine.access.find(secret + "x") == (None, None)
    await engine.access.revoke(token["id"])
    refused, known = await engine.access.find(secret)
    assert refused is None and known["revoked"] and not engine.access.still_valid(access)
    with pytest.raises(UnknownAccessToken):
        await engine.access.revoke("tok-nope")
    stored = await engine.events.events_of(AccessTokens.ID)
    assert all(secret not in repr(vars(e)) for e in stored)
    assert vars(stored[1])["secret_sha256"] == secret_hash(secret)
    assert "secret_sha256" not in event_as_dict(1, stored[1])["data"]


async def test_every_event_records_who_asked_and_reads_back_so(engine, world):
    with audit.requested_by(audit.Requester("tok-1", "ci")):
        started = await engine.add_addon(APP, "redis-starter-256")
    operation = await finished(engine, started)
    events = await world.events.events_of(UUID(operation["id"]))
    # Started in the request, and each step after it: the saga carries who asked
    assert {audit.recorded_by(e)["id"] for e in events} == {"tok-1"}
    row = next(r for r in await engine.operations() if r["id"] == operation["id"])
    assert row["requested_by"] == {"id": "tok-1", "name": "ci"}
    assert event_as_dict(1, events[0])["requested_by"] == {"id": "tok-1", "name": "ci"}
    local = await engine.access.create("ci", [APP])  # no request: the embedded library's call
    registry = await world.events.events_of(AccessTokens.ID)
    assert audit.recorded_by(registry[-1]) == {"id": "local", "name": "local"} and local


def test_an_event_recorded_before_requesters_were_has_none():
    tokens = AccessTokens()
    [opened] = tokens.collect_events()
    assert audit.recorded_by(opened) is None and event_as_dict(1, opened)["requested_by"] is None


async def test_each_request_line_of_the_log_names_the_token_that_made_it(engine):
    """Reading a password (the app's variables, the dashboard's pages) changes nothing: the log line is its trace."""
    await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    created = await engine.access.create("ci", [APP])
    async with TestClient(TestServer(make_app(engine, token="the-token", scrape_token="the-scrape-token"))) as client:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            for secret in (created["secret"], "the-token"):
                async with client.get(f"/v1/apps/{APP}/variables",
                                      headers={"Authorization": f"Bearer {secret}"}) as response:
                    assert response.status == 200, await response.text()
            async with client.get("/v1/operations") as response:
                assert response.status == 401
    lines = [(line["path"], line["status"], line.get("token_id")) for line in logs if line["event"] == "request"]
    assert lines == [(f"/v1/apps/{APP}/variables", 200, created["token"]["id"]), (f"/v1/apps/{APP}/variables", 200, "operator"),
                     ("/v1/operations", 401, None)]


async def test_a_retry_says_who_asked_for_it(world):
    engine = await started_engine(world, attention_retry_s=60)
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("start_node")  # neither the new node nor the old one starts: needs attention
    stuck = await engine.change_plan(APP, addon.name, "redis-starter-512")
    async with asyncio.timeout(5):
        while not any("Addon.NeedsAttention" in saved for saved in world.events.saves):
            await asyncio.sleep(0.005)
    await caught_up(engine)
    with capture_logs() as logs, audit.requested_by(audit.Requester("tok-1", "ci")):
        await engine.retry_operation(stuck["operation_id"])
    [retried] = [line for line in logs if line["event"] == "operation retried"]
    assert retried["operation_id"] == stuck["operation_id"] and retried["requested_by"] == {"id": "tok-1", "name": "ci"}
