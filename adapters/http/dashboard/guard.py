"""The dashboard's middleware, before the bearer check: its pages need a session (signed in with the
API token), and a change needs the session's CSRF token and our own origin. A /v1 request carrying the
session cookie and no Authorization header (the dashboard's script, its EventSource, a download link)
is let through the same way, with the same checks for what changes anything (header X-CSRF-Token); a
request with a bearer token is left to the bearer check, unchanged."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from adapters.http.auth import ACCESS, SESSION_AUTHENTICATED
from adapters.http.dashboard.keys import PUBLIC_ORIGIN, SESSION
from adapters.http.dashboard.render import page
from adapters.http.dashboard.sessions import SAFE_METHODS, Sessions, cookie_name, cross_site_refusal, origin_refusal
from adapters.http.errors import error_response
from adapters.http.keys import ENGINE

PREFIX = "/dashboard"
SIGN_IN = PREFIX + "/signin"
STATIC_PREFIX = PREFIX + "/static/"


def own_origin(request: web.Request) -> str:
    """Where the browser sees the dashboard: REDIS_ADDONS_PUBLIC_URL when set (behind a reverse proxy the
    request's scheme and Host are the proxy's hop to us, not the browser's), else as the request reached us."""
    return request.app.get(PUBLIC_ORIGIN) or f"{request.scheme}://{request.host}"


def served_securely(request: web.Request) -> bool:
    """Whether the browser reaches us over https: the session cookie is then Secure (and __Host-)."""
    public = request.app.get(PUBLIC_ORIGIN)
    return public.startswith("https://") if public else request.secure


def session_cookie(request: web.Request) -> str:
    return cookie_name(served_securely(request))


def is_dashboard(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def refused(why: str, status: int = 403) -> web.Response:
    return page("refused.html", status=status, message=why, signed_in=False)


def still_valid(request: web.Request, session) -> bool:
    engine = request.app.get(ENGINE)
    return session.access is not None and (engine is None or engine.access.still_valid(session.access))


def guard_middleware(sessions: Sessions):
    @web.middleware
    async def guard(request: web.Request, handler):
        session = sessions.get(request.cookies.get(session_cookie(request)))
        if session is not None and not still_valid(request, session):
            sessions.close(session.id)  # signed in with a token revoked since: signed out at once
            session = None
        if session is not None and session.access is not None:
            request[ACCESS] = session.access
        if is_dashboard(request.path):
            request[SESSION_AUTHENTICATED] = True  # the bearer check leaves the dashboard's paths to this one
            request[SESSION] = session
            unsafe = request.method not in SAFE_METHODS
            if request.path == SIGN_IN or request.path.startswith(STATIC_PREFIX):
                if unsafe and (why := origin_refusal(own_origin(request), request.headers.get("Origin"),
                                                     request.headers.get("Referer"))):
                    return refused(why)
                return await handler(request)
            if session is None:
                if not unsafe:
                    raise web.HTTPSeeOther(f"{SIGN_IN}?next={quote(request.path_qs, safe='/')}")
                return refused("not signed in (or the session has expired): sign in again", status=401)
            if unsafe:
                given = request.headers.get("X-CSRF-Token")
                if given is None and request.content_type == "application/x-www-form-urlencoded":
                    given = (await request.post()).get("csrf")
                if why := cross_site_refusal(session, given, own_origin(request), request.headers.get("Origin"),
                                             request.headers.get("Referer")):
                    return refused(why)
            return await handler(request)
        if session is not None and "Authorization" not in request.headers:
            if request.method not in SAFE_METHODS and (why := cross_site_refusal(
                    session, request.headers.get("X-CSRF-Token"), own_origin(request),
                    request.headers.get("Origin"), request.headers.get("Referer"))):
                return error_response(403, "cross-site-refused", why)
            request[SESSION_AUTHENTICATED] = True
        return await handler(request)

    return guard
