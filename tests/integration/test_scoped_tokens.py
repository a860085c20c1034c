"""Tokens scoped to apps, on a real engine, real Docker hosts and real Redis servers, through the HTTP API
and the CLI: every route of the OpenAPI document walked with a token for app MINE against the real things
of app THEIRS (its addon, backup, operation, webhook) answers the 404 of things that do not exist (or the
operator's 403), and leaves THEIRS as it was; the token works on MINE; the event log and its stream keep
MINE's events; a revoked token is refused at once; who asked shows in the timeline and the stream; the
token's secret is in no event, no log line, no byte of the stores.

The module shares one engine, one API server and two Starter addons (one per app)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests.integration.api_client import api_server, cli, module_engine, session, token, url
from tests.integration.conftest import running_addon

RUN = secrets.token_hex(3)
MINE, THEIRS = f"it-tk-{RUN}", f"it-tko-{RUN}"
NOWHERE = f"it-none-{RUN}"  # an app that never existed
# What the walk expects of each route the document lists, for a token scoped to MINE (a route not named
# here is an app's, and must answer 404 for THEIRS' things): a new route fails the walk until it is placed.
OPERATOR_ONLY = {"/v1/tokens", "/v1/tokens/{token}", "/v1/webhooks", "/v1/webhooks/{webhook}", "/v1/apps",
                 "/v1/apps/{app}/restart", "/v1/admin/replay", "/metrics",
                 "/v1/hosts", "/v1/hosts/{host}", "/v1/hosts/{host}/drain"}
OPEN = {"/health", "/v1/openapi.json", "/v1/addon_providers/{provider}/plans",
        "/v1/addon_providers/{provider}/versions"}
LISTS = {"/v1/operations", "/v1/events", "/v1/maintenance", "/v1/events/stream"}


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    async with module_engine(tmp_path_factory, "tokens", MINE, THEIRS) as running:
        yield running


@pytest.fixture(scope="module")
async def server(engine):
    async with api_server(engine) as running:
        yield running


@pytest.fixture(scope="module")
async def world(engine, server) -> dict:
    """Each app's addon; THEIRS' provisioning, backup and webhook; a token scoped to MINE."""
    mine, theirs = await asyncio.gather(running_addon(engine, MINE), running_addon(engine, THEIRS))
    async with session(engine) as http:
        async with http.post(url(server, f"/v1/apps/{THEIRS}/addons/{theirs}/backups?wait=true")) as response:
            assert response.status == 201, await response.text()
            backup = (await response.json())["backup"]["id"]
        async with http.post(url(server, f"/v1/apps/{THEIRS}/webhooks"),
                             json={"url": "http://127.0.0.1:9/theirs"}) as response:
            assert response.status == 201, await response.text()
            webhook = (await response.json())["webhook"]["id"]
        async with http.post(url(server, "/v1/tokens"), json={"name": "ci", "apps": [MINE]}) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
    [operation] = [o["id"] for o in await engine.operations(theirs) if o["kind"] == "provision"]
    return {"mine": mine, "theirs": theirs, "backup": backup, "webhook": webhook, "operation": operation,
            "secret": created["secret"], "token": created["token"]}


def scoped(secret: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"})


def routes(document: dict) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, spec in document["paths"].items() for method in spec]


def filled(path: str, values: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


async def call(http, server, method: str, path: str) -> tuple[int, dict | str]:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    async with http.request(method, url(server, path), json=body) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def state_of_theirs(engine, world) -> dict:
    """What a refused request must not have changed."""
    return {"addon": (await engine.addon(THEIRS, world["theirs"]))["status"],
            "operations": len(await engine.operations(world["theirs"])),
            "backups": [b["id"] for b in await engine.backups.list(THEIRS, world["theirs"])],
            "webhooks": [w["id"] for w in await engine.webhooks.list(THEIRS)],
            "settings": await engine.database.show(THEIRS, world["theirs"])}


async def test_every_route_answers_a_token_for_another_app_as_for_things_that_do_not_exist(engine, server, world):
    async with session(engine) as http:
        async with http.get(url(server, "/v1/openapi.json")) as response:
            document = await response.json()
    before = await state_of_theirs(engine, world)
    theirs = {"app": THEIRS, "addon": world["theirs"], "backup": world["backup"], "operation_id": world["operation"],
              "webhook": world["webhook"], "provider": "redis", "setting": "rdb", "token": world["token"]["id"]}
    missing = {**theirs, "app": NOWHERE, "operation_id": str(uuid.uuid4())}
    stand_ins = {"addon": f"{MINE}-0000", "backup": str(uuid.uuid4()), "webhook": str(uuid.uuid4())}

    def swapped(text: str) -> str:
        for key, value in stand_ins.items():
            text = text.replace(value, theirs[key])
        return text

    walked = 0
    async with scoped(world["secret"]) as http:
        for method, path in routes(document):
            if path == "/v1/events/stream":
                continue  # endless: test_the_event_stream_keeps_the_tokens_apps
            status, body = await call(http, server, method, filled(path, theirs))
            if path in OPERATOR_ONLY:
                assert status == 403 and body["error"]["rule"] == "operator-only", (method, path, body)
            elif path in OPEN:
                assert status == 200, (method, path, body)
            elif path in LISTS:
                assert status == 200 and THEIRS not in json.dumps(body) and world["theirs"] not in json.dumps(body), \
                    (method, path)
            else:
                assert "{app}" in path or "{operation_id}" in path, f"{method} {path}: place it in the walk's tables"
                absent = await call(http, server, method, filled(path, missing))
                assert status == absent[0] == 404, (method, path, body, absent)
                shown = json.dumps(absent[1]).replace(NOWHERE, THEIRS).replace(missing["operation_id"], world["operation"])
                assert json.dumps(body) == shown, (method, path)  # word for word: nothing tells THEIRS exists
                # MINE in the path, then THEIRS' addon, or MINE's addon and THEIRS' backup or webhook (a restore
                # takes any addon's backup): answered as one that does not exist (or refused for the body first)
                for own in ({"app": MINE}, {"app": MINE, "addon": world["mine"]}):
                    if not any(f"{{{key}}}" in path for key in ("addon", "backup", "webhook") if key not in own):
                        continue
                    status, body = await call(http, server, method, filled(path, {**theirs, **own}))
                    absent = await call(http, server, method, filled(path, {**theirs, **stand_ins, **own}))
                    assert status == absent[0] and status in (400, 404), (method, path, own, body)
                    assert json.dumps(body) == swapped(json.dumps(absent[1])), (method, path, own, body, absent)
            walked += 1
        assert (await call(http, server, "GET", f"/v1/maintenance?app={THEIRS}"))[0] == 404
    assert walked >= 40 and await state_of_theirs(engine, world) == before
    assert [o["kind"] for o in await engine.operations(world["mine"])] == ["provision"]  # no restore of THEIRS' data


async def test_the_token_works_on_its_app_and_its_commands_say_who_asked(engine, server, world):
    async with scoped(world["secret"]) as http:
        status, body = await call(http, server, "GET", f"/v1/apps/{MINE}/addons/{world['mine']}")
        assert status == 200 and body["addon"]["name"] == world["mine"]
        assert (await call(http, server, "GET", f"/v1/apps/{MINE}/variables"))[0] == 200
        async with http.post(url(server, f"/v1/apps/{MINE}/addons/redis/backups?wait=true")) as response:
            assert response.status == 201, await response.text()
            operation = (await response.json())["operation"]
        status, body = await call(http, server, "GET", f"/v1/operations/{operation['id']}")
        who = {"id": world["token"]["id"], "name": "ci"}
        assert status == 200 and body["operation"]["requested_by"] == who
        _, listed = await call(http, server, "GET", "/v1/operations")
        assert {o["app"] for o in listed["operations"]} == {MINE}
        assert next(o for o in listed["operations"] if o["id"] == operation["id"])["requested_by"] == who
        _, page = await call(http, server, "GET", "/v1/events?limit=1000")
        ours = [e for e in page["events"] if e["aggregate_id"] == operation["id"]]
        assert ours and all(e["requested_by"] == who for e in ours)  # Started, and each step of the saga
    async with session(engine) as http:
        _, page = await call(http, server, "GET", "/v1/events?limit=1000")
        started = {e["data"]["kind"]: e["requested_by"] for e in page["events"]
                   if e["type"] == "Operation.Started" and e["data"]["app"] == THEIRS}
        # provisioned by a call of the library (running_addon), backed up over HTTP with the installation's token
        assert started == {"provision": {"id": "local", "name": "local"}, "backup": {"id": "operator", "name": "operator"}}
        created = next(e for e in page["events"] if e["type"] == "AccessTokens.TokenCreated")
        assert created["requested_by"] == {"id": "operator", "name": "operator"}
        assert "secret_sha256" not in created["data"] and created["data"]["apps"] == [MINE]


async def test_the_event_stream_keeps_the_tokens_apps(engine, server, world):
    """Read until an event of MINE made after the stream opened: everything before it is MINE's."""
    async with scoped(world["secret"]) as http, http.get(url(server, "/v1/events/stream")) as stream:
        assert stream.status == 200
        async with session(engine) as operator:  # something of THEIRS, then something of MINE
            for app, addon, hour in ((THEIRS, world["theirs"], "5:00 UTC"), (MINE, world["mine"], "6:00 UTC")):
                async with operator.put(url(server, f"/v1/apps/{app}/addons/{addon}/backup_schedule"),
                                        json={"schedule_at": hour}) as response:
                    assert response.status == 200, await response.text()
        frames = []
        async for line in stream.content:
            if line.startswith(b"data: "):
                frames.append(json.loads(line[6:]))
                if frames[-1]["type"] == "Addon.BackupsScheduled" and frames[-1]["data"]["hour"] == 6:
                    break
    assert frames and not [f for f in frames if THEIRS in json.dumps(f) or world["theirs"] in json.dumps(f)]
    owners = {await engine.access.owner_of(uuid.UUID(f["aggregate_id"])) for f in frames}
    assert owners == {MINE}


async def test_the_dashboard_signed_in_with_a_token_shows_its_apps_only(engine, server, world):
    origin = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # 127.0.0.1's cookie
        async with browser.post(url(server, "/dashboard/signin"), data={"token": world["secret"], "next": ""},
                                headers={"Origin": origin}) as response:
            assert response.status == 200 and response.url.path == "/dashboard/apps"
            page = await response.text()
        assert MINE in page and THEIRS not in page
        async with browser.get(url(server, f"/dashboard/apps/{THEIRS}/addons/{world['theirs']}/overview")) as response:
            assert response.status == 404 and f"unknown app {THEIRS!r}" in (await response.text()).replace("&#39;", "'")
        async with browser.get(url(server, f"/dashboard/apps/{MINE}/addons/{world['mine']}/operations")) as response:
            assert response.status == 200 and "requested by" in await response.text()


async def test_the_cli_creates_lists_and_revokes_and_a_revoked_token_is_refused_at_once(engine, server, world,
                                                                                        monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    before = await engine.access.list()
    for argv, words in [(["--name", "ci", "--app", NOWHERE], f"unknown app {NOWHERE!r}"),
                        (["--name", " ", "--app", MINE], "needs --name"),
                        (["--name", "ci"], "at least one --app")]:
        assert await cli("tokens", "create", *argv) == 1
        assert words in capsys.readouterr().err
    assert await cli("tokens", "revoke", "tok-nope") == 1 and "unknown token 'tok-nope'" in capsys.readouterr().err
    assert await engine.access.list() == before  # nothing recorded
    with capture_logs() as logs:
        assert await cli("tokens", "create", "--name", "deploy", "--app", MINE, "--grant", "metrics") == 0
        out = capsys.readouterr().out
        secret = re.search(r"Secret .*: (rat_\S+)", out).group(1)
        token_id = re.search(r"Token (tok-\w+)", out).group(1)
        async with scoped(secret) as http:
            assert (await call(http, server, "GET", "/metrics"))[0] == 200  # granted
            assert (await call(http, server, "GET", f"/v1/apps/{MINE}/addons"))[0] == 200
            monkeypatch.setenv("REDIS_ADDONS_TOKEN", secret)  # the CLI with the scoped token: a backup, its timeline
            assert await cli("--app", MINE, "--addon", "redis", "backups-create") == 0
            [backup] = [o for o in await engine.operations(world["mine"]) if o["requested_by"]["id"] == token_id]
            capsys.readouterr()
            assert await cli("operations", "--id", backup["id"]) == 0
            assert f"Requested by: deploy ({token_id})" in capsys.readouterr().out
            assert await cli("--app", THEIRS, "--addon", "redis", "backups") == 1
            assert f"unknown app {THEIRS!r}" in capsys.readouterr().err
            monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
            assert await cli("tokens", "list") == 0
            listed = capsys.readouterr().out
            assert token_id in listed and "deploy" in listed and secret not in listed
            assert await cli("tokens", "revoke", token_id) == 0
            status, body = await call(http, server, "GET", f"/v1/apps/{MINE}/addons")
            assert status == 401 and f"token {token_id} was revoked" in body["error"]["message"]
    assert secret not in repr(logs) and world["secret"] not in repr(logs)
    stores = [f for f in engine.settings.home.iterdir() if ".sqlite" in f.name]  # with their -wal files
    assert any(f.name == "events.sqlite" for f in stores)
    for store in stores:
        stored = store.read_bytes()
        assert secret.encode() not in stored and world["secret"].encode() not in stored, store
