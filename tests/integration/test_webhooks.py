"""Webhooks on real parts: a real aiohttp receiver on loopback, a real starter-256 addon, webhooks registered
through the API, the node's container killed with Docker and the watcher driven: the receiver is told
`node.down` then `node.up`, signed with the secret the registration showed; a receiver answering 500
first gets the same delivery ID again; a webhook off loopback over http is refused; a build is named
alike on every host. One addon and one kill for the module."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from domain.addon import Addon
from domain.notifications import signature
from engine import build
from tests.integration.api_client import cli, session, url
from engine.settings import load_hosts
from engine.webhooks import current_build
from tests.integration.conftest import HOSTS_FILE, remove_everything_of, running_addon, settings_for


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST (its headers and body) by path, answers each
    path's statuses in turn (200 once they are used up)."""

    def __init__(self):
        self.got: dict[str, list[tuple[dict, bytes]]] = {}
        self.statuses: dict[str, list[int]] = {"/flaky": [500]}
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def take(request: web.Request) -> web.Response:
            self.got.setdefault(request.path, []).append((dict(request.headers), await request.read()))
            waiting = self.statuses.get(request.path) or []
            return web.Response(status=waiting.pop(0) if waiting else 200)

        app = web.Application()
        app.router.add_post("/{name}", take)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}{path}"

    def messages(self, path: str) -> list[dict]:
        return [json.loads(body) for _, body in self.got.get(path, [])]


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    """An engine, its API, a receiver, an addon, and its node killed once with two webhooks registered."""
    app = f"it-{secrets.token_hex(4)}"
    receiver = Receiver()
    await receiver.start()
    async with build(settings_for(tmp_path_factory.mktemp("webhooks") / "home")) as engine:
        server = TestServer(make_app(engine))
        await server.start_server()
        try:
            addon = await running_addon(engine, app)
            async with session(engine) as http:
                registered = {}
                for path, where in (("/hook", f"/v1/apps/{app}/webhooks"), ("/flaky", "/v1/webhooks")):
                    async with http.post(url(server, where), json={"url": receiver.url(path)}) as answer:
                        assert answer.status == 201, await answer.text()
                        registered[path] = await answer.json()
            current = await engine.events.get(Addon.id_for(addon))
            container = await engine.runtime.client(current.host).containers.get(current.container)
            await container.kill()
            [seen] = await engine.watcher.look()
            assert seen["down"] and seen["recovered"], seen
            async with asyncio.timeout(20):
                while len(receiver.messages("/hook")) < 2 or len(receiver.messages("/flaky")) < 3:
                    await asyncio.sleep(0.1)
            yield dict(engine=engine, server=server, receiver=receiver, app=app, addon=addon, node=current.container,
                       registered=registered)
        finally:
            await server.close()
            await receiver.runner.cleanup()
            await remove_everything_of(app)


async def test_a_killed_node_is_told_down_then_up_signed(world):
    receiver, registered = world["receiver"], world["registered"]["/hook"]
    down, up = receiver.messages("/hook")
    assert (down["type"], up["type"]) == ("node.down", "node.up")
    for message in (down, up):
        assert (message["app"], message["addon"], message["node"], message["role"]) == (
            world["app"], world["addon"], world["node"], "data")
    assert down["id"] != up["id"]
    for headers, body in receiver.got["/hook"]:
        assert headers["X-Redis-Addons-Signature"] == signature(registered["secret"], body)
        assert registered["secret"].encode() not in body
    assert signature("another secret", receiver.got["/hook"][0][1]) != receiver.got["/hook"][0][0]["X-Redis-Addons-Signature"]


async def test_a_receiver_answering_500_first_gets_the_same_delivery_id_again(world):
    first, again, up = world["receiver"].got["/flaky"]
    assert first[0]["X-Redis-Addons-Delivery"] == again[0]["X-Redis-Addons-Delivery"] != up[0]["X-Redis-Addons-Delivery"]
    assert first[1] == again[1]  # the same body, its id included
    async with session(world["engine"]) as http:
        async with http.get(url(world["server"], "/v1/webhooks")) as answer:
            listed = {w["url"]: w for w in (await answer.json())["webhooks"]}
    flaky = listed[world["receiver"].url("/flaky")]
    assert (flaky["app"], flaky["delivered"], flaky["dead_letters"]) == (None, 2, 0)
    assert listed[world["receiver"].url("/hook")]["app"] == world["app"]
    assert "secret" not in str(listed).lower()


@pytest.mark.parametrize("bad", ["http://192.0.2.1/hook", "hook.example.com/x", "http://[::1"])
async def test_a_webhook_off_loopback_over_http_or_not_a_url_is_refused(world, bad):
    async with session(world["engine"]) as http:
        async with http.post(url(world["server"], "/v1/webhooks"), json={"url": bad}) as answer:
            refused = (answer.status, await answer.json())
    assert refused[0] == 400
    assert refused[1]["error"]["rule"] == "webhook-url" and refused[1]["error"]["field"] == "url"
    assert bad in refused[1]["error"]["message"]


async def test_the_cli_adds_lists_and_removes_an_apps_webhook(world, monkeypatch, tmp_path, capsys):
    engine, app = world["engine"], world["app"]
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(world["server"].make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
    hook = world["receiver"].url("/cli")
    assert await cli("--app", app, "webhooks-add", hook) == 0
    added = capsys.readouterr().out
    webhook_id = added.split()[2]
    assert "Signing secret" in added and engine.webhooks.notifier.hooks[webhook_id].url == hook
    assert await cli("--app", app, "webhooks") == 0
    assert hook in capsys.readouterr().out
    assert await cli("--app", app, "webhooks-add", "http://192.0.2.1/x") == 1
    assert capsys.readouterr().err.startswith("error: webhook URL 'http://192.0.2.1/x' refused")
    assert await cli("--app", app, "webhooks-remove", webhook_id) == 0
    assert webhook_id not in engine.webhooks.notifier.hooks
    assert await cli("--app", app, "webhooks-remove", webhook_id) == 1
    assert "unknown webhook" in capsys.readouterr().err


async def test_a_build_is_named_alike_on_every_host(world):
    """The setup imports one tarball into each host: image IDs differ, the build's name must not (else an
    addon whose nodes moved would be told its build is outdated again)."""
    engine, addon = world["engine"], await world["engine"].events.get(Addon.id_for(world["addon"]))
    hosts = [h.name for h in load_hosts(HOSTS_FILE)]
    builds = engine.maintenance.builds
    named = [await current_build(builds, [{"host": h, "version": addon.redis_version}]) for h in hosts]
    ids = {await engine.runtime.image_id(h, builds.versions.get(addon.redis_version).image) for h in hosts}
    assert len(set(named)) == 1 and named[0].startswith("sha256:") and named[0] not in ids, (named, ids)
