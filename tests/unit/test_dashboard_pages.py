"""The dashboard's pages and forms over an engine on the in-memory ports (make_app, a session opened
server-side): a refused form shows a page, never the API's JSON or a 500; the Operations tab streams from
the read models' position taken before its rows."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.app import make_app
from adapters.http.dashboard.keys import SESSIONS
from adapters.http.dashboard.sessions import COOKIE
from domain.operation import Operation
from engine.access import OPERATOR_ACCESS
from tests.unit.engine_fakes import APP, caught_up, finished


@pytest.fixture
async def dashboard(engine):
    app = make_app(engine, token="the-token", scrape_token="the-scrape-token")
    async with TestClient(TestServer(app)) as client:
        session = app[SESSIONS].open(OPERATOR_ACCESS)
        origin = str(client.make_url("")).rstrip("/")
        client.signed_in = {"Cookie": f"{COOKIE}={session.id}", "Origin": origin}
        client.csrf = session.csrf
        yield client


async def an_addon(engine) -> str:
    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    await caught_up(engine)
    return operation["addon"]


def base(addon: str) -> str:
    return f"/dashboard/apps/{APP}/addons/{addon}"


@pytest.mark.parametrize("hour", ["²", "١", "-1", "24", "3.0", ""])
async def test_an_hour_that_is_not_0_to_23_in_ascii_digits_is_refused_on_the_page(dashboard, engine, hour):
    addon = await an_addon(engine)
    before = await engine.backups.schedule(APP, addon)
    response = await dashboard.post(base(addon) + "/backups/schedule", headers=dashboard.signed_in,
                                    data={"csrf": dashboard.csrf, "enabled": "on", "hour": hour})
    assert response.status == 400 and response.content_type == "text/html"
    assert "the hour must be 0 to 23 (UTC)" in await response.text()
    assert await engine.backups.schedule(APP, addon) == before


@pytest.mark.parametrize("path, form", [
    ("/backups", {}),  # Make manual backup: starts an operation
    ("/settings/aof", {"enabled": "true"}),
    ("/backups/schedule", {"enabled": "on", "hour": "3"}),
    ("/backups/schedule", {"hour": "3"}),  # refused before the engine is asked
])
async def test_a_form_for_an_unknown_addon_answers_a_page_saying_so(dashboard, engine, path, form):
    await an_addon(engine)  # the app exists; its addon below does not
    response = await dashboard.post(base(f"{APP}-0000") + path, headers=dashboard.signed_in,
                                    data={"csrf": dashboard.csrf, **form})
    assert response.status == 404 and response.content_type == "text/html"
    text = await response.text()
    assert "Not found" in text and f"{APP}-0000" in text


async def test_the_operations_tab_streams_from_the_read_models_position_taken_before_its_rows(dashboard, engine):
    addon = await an_addon(engine)
    await engine.follower.stop()  # from here, what is recorded is not projected: the read models lag
    # An operation recorded meanwhile (a command would wait for the read models: saved as its start saves it)
    backup = Operation(kind="backup", addon=addon, app=APP, steps=["save", "archive", "record"])
    await engine.events.save(backup)
    projected, recorded = engine.views.position(), await engine.events.max_position()
    assert projected < recorded
    reads = []
    views = engine.views
    engine.views = Recording(views, reads)
    try:
        response = await dashboard.get(base(addon) + "/operations", headers=dashboard.signed_in)
    finally:
        engine.views = views
    html = await response.text()
    assert response.status == 200
    assert str(backup.id) not in html  # not a row yet: its events must come by the stream
    assert int(re.search(r'data-after="(\d+)"', html)[1]) == projected
    assert reads.index("position") < reads.index("operations")


class Recording:
    """The read models, noting which reads are made in which order."""

    def __init__(self, views, reads: list[str]):
        self._views, self._reads = views, reads

    def __getattr__(self, name):
        self._reads.append(name)
        return getattr(self._views, name)
