"""Every status a route can answer is in its OpenAPI entry. The errors each handler can raise are
read from the source (tests/unit/raise_analysis.py: through the engine's services down to the
domain's rules), mapped to statuses as the error middleware maps them (errors.status_for), and
each must be documented; with 401 (but for public routes) and 500 (an unexpected error) on all."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import domain.errors
from adapters.http import backups, events, settings
from adapters.http.app import make_app
from adapters.http.dashboard.guard import is_dashboard
from adapters.http.errors import ANSWERS, BadRequest, error_middleware, status_for
from adapters.http.openapi import DOCUMENT
from domain.errors import AddonRemoved, BackupNotDone, DomainError
from engine.ports import ArchiveAltered, EffectError, TransientError
from engine.saga import Coordinator
from tests.unit.raise_analysis import Code

CODE = Code()
# The dashboard's pages (HTML for a browser, adapters/http/dashboard) are not the API the document describes.
ROUTES = sorted(((r.method, r.resource.canonical, r.handler) for r in make_app(None, token="unused").router.routes()
                 if r.method != "HEAD" and not is_dashboard(r.resource.canonical)), key=lambda r: (r[1], r[0]))
BACKUPS = "/v1/apps/{app}/addons/{addon}/backups"
KEPT = "a removed addon's backups stay listed and downloadable (its lookup passes allow_removed=True)"
# What the reading finds and cannot happen: it does not follow the values of arguments.
CANNOT_HAPPEN = {
    ("GET", BACKUPS): {AddonRemoved: KEPT},
    ("GET", BACKUPS + "/{backup}"): {AddonRemoved: KEPT,
                                     BackupNotDone: "only a download or a restore needs a finished backup "
                                                    "(backup_row is called with downloadable=False)"},
    ("GET", BACKUPS + "/{backup}/archive"): {AddonRemoved: KEPT},
    ("GET", "/v1/apps/{app}/addons/{addon}/nodes"): {AddonRemoved: "a removed addon's nodes are listed, retired "
                                                                   "(Engine.nodes looks it up with allow_removed=True)"},
    ("GET", "/v1/apps/{app}/addons/{addon}/stats"): dict.fromkeys(
        (EffectError, ArchiveAltered, TransientError), "the sampler's reads are caught (StatsSampler._quietly): a node that does not "
                                       "answer is sampled as down"),
}


def answers(method: str, path: str, handler) -> dict[int, list]:
    """Each status the route can answer -> the errors (or the handler's own error_response) giving it."""
    found = {500: ["an unexpected error"]}
    if DOCUMENT["paths"][path][method.lower()].get("security") != []:
        found[401] = ["the bearer token middleware"]
    for error in CODE.raises(handler):
        if isinstance(error, int):
            found.setdefault(error, []).append("error_response")
        elif error not in CANNOT_HAPPEN.get((method, path), {}):
            found.setdefault(status_for(error) or 500, []).append(error)
    return found


@pytest.mark.parametrize("method, path, handler", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_status_a_route_can_answer_is_documented(method, path, handler):
    documented = {int(s) for s in DOCUMENT["paths"][path][method.lower()]["responses"]}
    missing = {status: why for status, why in answers(method, path, handler).items() if status not in documented}
    assert not missing, "\n".join(
        f"{method} {path} can answer {status}, which its OpenAPI entry does not list: "
        + "; ".join(CODE.why(handler, e) if isinstance(e, type) else str(e) for e in why)
        for status, why in sorted(missing.items()))


def test_what_cannot_happen_is_still_found():
    """An exception listed in CANNOT_HAPPEN that the reading no longer finds is stale: remove it."""
    handlers = {(m, p): h for m, p, h in ROUTES}
    for route, errors in CANNOT_HAPPEN.items():
        assert set(errors) <= CODE.raises(handlers[route]), route


def test_the_reading_follows_handlers_into_the_engine_and_the_domain():
    assert AddonRemoved in CODE.raises(settings.show_settings)  # via DatabaseSettings and AddonLookup
    assert AddonRemoved in CODE.raises(backups.set_schedule)
    assert BackupNotDone in CODE.raises(backups.download_archive)  # via the Backup aggregate's rule
    assert web.HTTPRequestEntityTooLarge in CODE.raises(backups.set_schedule)  # aiohttp reading the body
    assert 416 in CODE.raises(backups.download_archive)  # its own error_response
    assert CODE.raises(events.event_page) == {BadRequest}
    # what a saga raises fails its task, not the request that submitted it
    assert CODE.raises(Coordinator.submit) == set()
    # a try that catches an error stops it: InvalidSchedule becomes a BadRequest naming the field
    assert domain.errors.InvalidSchedule not in CODE.raises(backups.set_schedule)


def every_error_class():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    return sorted({*subclasses(DomainError), DomainError, *(kind for kind, _, _ in ANSWERS)}, key=lambda c: c.__name__)


@pytest.mark.parametrize("error", every_error_class(), ids=lambda c: c.__name__)
async def test_the_middleware_answers_each_error_with_the_status_documented_for_it(error):
    async def handler(request):
        raise error("refused")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        assert response.status == status_for(error)
        assert (await response.json())["error"]["message"] == "refused"
