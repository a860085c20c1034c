"""The dashboard's sessions and cross-site checks (adapters/http/dashboard/sessions.py), and its guard in
front of the bearer check, on a bare aiohttp application (no engine)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.auth import auth_middleware
from adapters.http.dashboard import Dashboard, actions
from adapters.http.dashboard.keys import SESSIONS, TOKEN
from adapters.http.dashboard.guard import guard_middleware
from adapters.http.dashboard.sessions import (COOKIE, SECURE_COOKIE, Sessions, cross_site_refusal, origin_refusal,
                                              token_matches)
from engine.access import OPERATOR_ACCESS
from engine.settings import Settings, SettingsError, public_origin

OWN = "http://127.0.0.1:8080"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_until_its_expiry_then_is_gone():
    clock = Clock()
    sessions = Sessions(lifetime_s=60, clock=clock)
    session = sessions.open()
    assert sessions.get(session.id) == session
    clock.now += 59.9
    assert sessions.get(session.id) == session
    clock.now += 0.1
    assert sessions.get(session.id) is None
    assert len(sessions) == 0


def test_each_session_has_its_own_random_id_and_csrf_token():
    sessions = Sessions()
    a, b = sessions.open(), sessions.open()
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert min(len(a.id), len(a.csrf)) >= 40


def test_signing_out_drops_the_session_and_unknown_ids_find_nothing():
    sessions = Sessions()
    session = sessions.open()
    sessions.close(session.id)
    assert sessions.get(session.id) is None
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get("forged") is None
    sessions.close("forged")  # nothing to drop: no error


def test_expired_sessions_are_dropped_when_another_opens():
    clock = Clock()
    sessions = Sessions(lifetime_s=10, clock=clock)
    sessions.open()
    clock.now += 11
    sessions.open()
    assert len(sessions) == 1


@pytest.mark.parametrize("origin, referer, refused", [
    (OWN, None, None),
    ("HTTP://127.0.0.1:8080", None, None),
    ("http://evil.example", None, "another origin (http://evil.example)"),
    ("http://127.0.0.1:8081", None, "another origin"),  # same site, another port: another origin
    ("https://127.0.0.1:8080", None, "another origin"),
    (None, OWN + "/dashboard/apps", None),
    (None, "http://evil.example/page", "another origin (http://evil.example)"),
    ("null", "http://evil.example/page", "another origin"),  # an opaque origin: the Referer decides
    (None, None, "neither an Origin nor a Referer"),
])
def test_origin_is_checked_against_our_own(origin, referer, refused):
    why = origin_refusal(OWN, origin, referer)
    assert (why is None) if refused is None else (refused in why)


def test_a_change_needs_the_sessions_own_csrf_token():
    sessions = Sessions()
    session, other = sessions.open(), sessions.open()
    assert cross_site_refusal(session, session.csrf, OWN, OWN, None) is None
    for given in (None, "", other.csrf, session.csrf + "x"):
        assert "CSRF token" in cross_site_refusal(session, given, OWN, OWN, None)
    assert "another origin" in cross_site_refusal(session, session.csrf, OWN, "http://evil.example", None)


def test_token_matching():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc") and not token_matches(None, "abc") and not token_matches("", "abc")


# -- the guard before the bearer check ----------------------------------------------------


@pytest.fixture
async def client():
    sessions = Sessions()
    app = web.Application(middlewares=[guard_middleware(sessions), auth_middleware("the-token")])

    async def answer(request):
        return web.json_response({"ok": True})

    app.router.add_get("/v1/thing", answer)
    app.router.add_post("/v1/thing", answer)
    app.router.add_get("/dashboard/apps", answer)
    app.router.add_post("/dashboard/apps/x/backups", answer)
    async with TestClient(TestServer(app)) as test_client:
        test_client.sessions = sessions
        yield test_client


def own_origin(client) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_the_dashboard_without_a_session_sends_to_sign_in(client):
    response = await client.get("/dashboard/apps", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/dashboard/signin?next=/dashboard/apps"
    response = await client.post("/dashboard/apps/x/backups", headers={"Origin": own_origin(client)})
    assert response.status == 401


async def test_a_session_cookie_opens_the_api_for_reading_and_with_its_csrf_token_for_changes(client):
    session = client.sessions.open(OPERATOR_ACCESS)
    cookie = {"Cookie": f"{COOKIE}={session.id}"}
    assert (await client.get("/v1/thing", headers=cookie)).status == 200
    refused = await client.post("/v1/thing", headers={**cookie, "Origin": own_origin(client)})
    assert refused.status == 403 and (await refused.json())["error"]["rule"] == "cross-site-refused"
    elsewhere = await client.post("/v1/thing", headers={**cookie, "Origin": "http://evil.example", "X-CSRF-Token": session.csrf})
    assert elsewhere.status == 403
    allowed = await client.post("/v1/thing", headers={**cookie, "Origin": own_origin(client), "X-CSRF-Token": session.csrf})
    assert allowed.status == 200


async def test_a_form_change_takes_the_csrf_token_from_its_fields(client):
    session = client.sessions.open(OPERATOR_ACCESS)
    headers = {"Cookie": f"{COOKIE}={session.id}", "Origin": own_origin(client)}
    assert (await client.post("/dashboard/apps/x/backups", data={"csrf": session.csrf}, headers=headers)).status == 200
    assert (await client.post("/dashboard/apps/x/backups", data={"csrf": "forged"}, headers=headers)).status == 403


async def test_the_bearer_path_is_unchanged(client):
    session = client.sessions.open(OPERATOR_ACCESS)
    # A bearer token is checked as before, whatever cookie comes with it.
    wrong = await client.get("/v1/thing", headers={"Authorization": "Bearer wrong", "Cookie": f"{COOKIE}={session.id}"})
    assert wrong.status == 401
    right = await client.post("/v1/thing", headers={"Authorization": "Bearer the-token"})
    assert right.status == 200
    assert (await client.get("/v1/thing", headers={"Cookie": f"{COOKIE}=forged"})).status == 401


# -- the cookie itself ------------------------------------------------------------------


async def signed_in_cookie(scheme: str) -> tuple[int, str]:
    """Signs in on a bare application with the dashboard's sign-in route, the request seen as `scheme`
    (as behind a TLS listener); the status and the Set-Cookie header."""
    sessions = Sessions()

    @web.middleware
    async def seen_as(request, handler):
        return await handler(request.clone(scheme=scheme))

    app = web.Application(middlewares=[seen_as, guard_middleware(sessions), auth_middleware("the-token")])
    app[TOKEN], app[SESSIONS] = "the-token", sessions
    app.router.add_routes(actions.routes)
    async with TestClient(TestServer(app)) as client:
        origin = f"{scheme}://{client.make_url('').host}:{client.make_url('').port}"
        response = await client.post("/dashboard/signin", data={"token": "the-token"}, allow_redirects=False,
                                     headers={"Origin": origin})
        return response.status, response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("scheme, secure", [("http", False), ("https", True)])
async def test_the_session_cookie_is_httponly_strict_and_secure_over_https(scheme, secure):
    status, cookie = await signed_in_cookie(scheme)
    assert status == 303
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert ("secure" in attributes) is secure
    assert cookie.startswith(f"{SECURE_COOKIE if secure else COOKIE}=")  # __Host- only where it is Secure


# -- behind a reverse proxy (REDIS_ADDONS_PUBLIC_URL) --------------------------------------

PUBLIC = "https://redis.example.com"


@pytest.mark.parametrize("given, origin", [
    ("", None), ("  ", None),
    ("https://Redis.Example.com", PUBLIC), ("https://redis.example.com/", PUBLIC),
    ("https://redis.example.com:443", PUBLIC),  # as a browser's Origin says it: no default port
    ("http://127.0.0.1:8470", "http://127.0.0.1:8470"),
])
def test_the_public_url_is_read_as_an_origin(given, origin, tmp_path):
    hosts = tmp_path / "hosts.json"
    hosts.write_text('{"hosts": []}')
    env = {"REDIS_ADDONS_HOME": str(tmp_path), "REDIS_ADDONS_HOSTS": str(hosts), "REDIS_ADDONS_PUBLIC_URL": given}
    assert Settings.from_env(env).public_url == origin


@pytest.mark.parametrize("given, says", [
    ("redis.example.com", "'redis.example.com'"), ("https://redis.example.com/dashboard", "no path"),
    ("ftp://redis.example.com", "http(s)://host[:port]"), ("https://redis.example.com:https", "http(s)://host[:port]"),
    ("https://admin:hunter2@redis.example.com", "must not carry credentials"),
])
def test_a_public_url_that_is_not_an_origin_is_refused_naming_it(given, says):
    with pytest.raises(SettingsError, match="REDIS_ADDONS_PUBLIC_URL") as refused:
        public_origin(given)
    assert says in str(refused.value) and "hunter2" not in str(refused.value)


@pytest.fixture
async def proxied():
    """The dashboard behind an https reverse proxy: requests reach it over plain http, from the proxy."""
    dashboard = Dashboard("the-token", public_url=PUBLIC)
    app = web.Application(middlewares=[dashboard.middleware, auth_middleware("the-token")])
    dashboard.install(app)

    async def answer(request):
        return web.json_response({"ok": True})

    app.router.add_post("/dashboard/apps/x/backups", answer)
    async with TestClient(TestServer(app)) as test_client:
        test_client.sessions = dashboard.sessions
        yield test_client


async def test_behind_an_https_proxy_forms_from_the_public_origin_pass_and_the_cookie_is_secure_and_host_only(proxied):
    response = await proxied.post("/dashboard/signin", data={"token": "the-token"}, allow_redirects=False,
                                  headers={"Origin": PUBLIC})
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SECURE_COOKIE}=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie  # what __Host- requires
    session = proxied.sessions.get(cookie.split(";")[0].split("=", 1)[1])
    assert session is not None

    def change(cookie_name: str, origin: str):
        return proxied.post("/dashboard/apps/x/backups", data={"csrf": session.csrf}, allow_redirects=False,
                            headers={"Cookie": f"{cookie_name}={session.id}", "Origin": origin})
    assert (await change(SECURE_COOKIE, PUBLIC)).status == 200
    refused = await change(SECURE_COOKIE, own_origin(proxied))  # the hop's own origin is not the browser's
    assert refused.status == 403 and "another origin" in await refused.text()
    assert (await change(COOKIE, PUBLIC)).status == 401  # the plain name is not read: it could be set over http

    signed_out = await proxied.post("/dashboard/signout", data={"csrf": session.csrf}, allow_redirects=False,
                                    headers={"Cookie": f"{SECURE_COOKIE}={session.id}", "Origin": PUBLIC})
    assert signed_out.status == 303
    dropped = signed_out.headers["Set-Cookie"]
    assert dropped.startswith(f"{SECURE_COOKIE}=") and "Secure" in dropped  # a __Host- cookie is dropped only so
