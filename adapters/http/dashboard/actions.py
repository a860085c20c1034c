"""What the dashboard's forms do (POST): sign in and out, and the changes an addon's tabs offer. The
guard middleware has checked the session, its CSRF token and the origin before any of these runs. A
refused change shows its tab again with the reason; one that starts an operation leads to the
Operations tab, where its steps go by live."""

from __future__ import annotations

from aiohttp import web

from adapters.http.dashboard.guard import served_securely, session_cookie
from adapters.http.dashboard.keys import SESSION, SESSIONS, TOKEN
from adapters.http.dashboard.pages import ADDON, base_context, tab_or_refusal
from adapters.http.dashboard.render import HEADERS, page
from adapters.http.dashboard.sessions import token_matches
from adapters.http.errors import BadRequest, error_response, scrub, status_for
from adapters.http.keys import ENGINE
from domain.errors import DomainError
from engine.access import OPERATOR_ACCESS
from engine.ports import EffectError, TransientError

routes = web.RouteTableDef()

# What the API answers as a refusal (adapters/http/errors.py) is shown on the page the form came from.
REFUSALS = (DomainError, BadRequest, EffectError, TransientError)

WRONG_TOKEN = ("wrong API token: paste the token from the server's api-token file "
               "(in its data directory, REDIS_ADDONS_HOME), or a live token the operator created for your apps")


def local_next(target: str) -> str:
    """Where to go after signing in: a dashboard path of ours only (never another site)."""
    return target if target.startswith("/dashboard/") and not target.startswith("//") else "/dashboard/apps"


@routes.post("/dashboard/signin")
async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    given = str(form.get("token", "")).strip()
    access = OPERATOR_ACCESS if token_matches(given, request.app[TOKEN]) else None
    if access is None and given and request.app.get(ENGINE) is not None:
        access, _ = await request.app[ENGINE].access.find(given)  # a token scoped to apps: its apps only
    if access is None:
        return page("signin.html", status=401, next=str(form.get("next", "")), error=WRONG_TOKEN,
                    **base_context(request))
    sessions, cookie = request.app[SESSIONS], session_cookie(request)
    sessions.close(request.cookies.get(cookie))  # a new id at each sign-in (no session fixation)
    session = sessions.open(access)
    response = web.HTTPSeeOther(local_next(str(form.get("next", ""))))
    response.set_cookie(cookie, session.id, httponly=True, samesite="Strict", path="/",
                        secure=served_securely(request), max_age=int(sessions.lifetime_s))
    raise response


@routes.post("/dashboard/signout")
async def sign_out(request: web.Request) -> web.Response:
    request.app[SESSIONS].close(request[SESSION].id)
    response = web.HTTPSeeOther("/dashboard/signin")
    # A __Host- cookie is dropped only by a Set-Cookie that is Secure too.
    response.del_cookie(session_cookie(request), path="/", secure=served_securely(request), httponly=True,
                        samesite="Strict")
    raise response


async def started(request: web.Request, tab: str, start) -> web.Response:
    """Run `start` (an engine call answering {"operation_id": ...}); on to the Operations tab, or back
    to `tab` with the reason it was refused."""
    try:
        requested = await start()
    except REFUSALS as e:
        return await tab_or_refusal(request, tab, error=scrub(str(e)), status=status_for(type(e)))
    raise web.HTTPSeeOther(f"{base(request)}/operations?op={requested['operation_id']}")


def base(request: web.Request) -> str:
    return f"/dashboard/apps/{request.match_info['app']}/addons/{request.match_info['addon']}"


@routes.post(ADDON + "/plan")
async def change_plan(request: web.Request) -> web.Response:
    """Reference: Change plan, Finish, then "Confirm plan change" (the form posting here)."""
    form = await request.post()
    plan = str(form.get("plan", ""))
    app, addon = request.match_info["app"], request.match_info["addon"]
    return await started(request, "general", lambda: request.app[ENGINE].change_plan(app, addon, plan))


@routes.post(ADDON + "/settings/{setting}")
async def change_setting(request: web.Request) -> web.Response:
    form = await request.post()
    enabled = form.get("enabled") == "true"
    app, addon, setting = request.match_info["app"], request.match_info["addon"], request.match_info["setting"]
    return await started(request, "features",
                         lambda: request.app[ENGINE].database.change(app, addon, setting, enabled))


@routes.post(ADDON + "/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    form = await request.post()
    version = str(form.get("version", "")) or None
    app, addon = request.match_info["app"], request.match_info["addon"]
    return await started(request, "general",
                         lambda: request.app[ENGINE].database_version.upgrade(app, addon, version))


@routes.post(ADDON + "/backups")
async def make_backup(request: web.Request) -> web.Response:
    app, addon = request.match_info["app"], request.match_info["addon"]
    return await started(request, "backups", lambda: request.app[ENGINE].backups.create(app, addon))


@routes.post(ADDON + "/backups/schedule")
async def schedule(request: web.Request) -> web.Response:
    """Reference: "I want to enable scheduled backups", an hour (UTC), Update."""
    form = await request.post()
    hour = str(form.get("hour", ""))
    if form.get("enabled") != "on":
        return await tab_or_refusal(request, "backups", status=400,
                                    error="check \"I want to enable scheduled backups\" to set the hour")
    # ASCII digits only: "²".isdigit() and "١".isdecimal() are true, and int() refuses the first.
    if not (hour.isascii() and hour.isdecimal()) or not 0 <= int(hour) <= 23:
        return await tab_or_refusal(request, "backups", status=400,
                                    error=f"the hour must be 0 to 23 (UTC), got {hour!r}")
    try:
        await request.app[ENGINE].backups.set_schedule(request.match_info["app"], request.match_info["addon"],
                                                       f"{int(hour)}:00 UTC", "UTC")
    except REFUSALS as e:
        return await tab_or_refusal(request, "backups", error=scrub(str(e)), status=status_for(type(e)))
    raise web.HTTPSeeOther(f"{base(request)}/backups")


@routes.post(ADDON + "/password")
async def password(request: web.Request) -> web.Response:
    """The default user's password, only when asked (the Users tab's "Show password"): never in a page."""
    engine = request.app[ENGINE]
    app, addon = request.match_info["app"], request.match_info["addon"]
    name = (await engine.addon(app, addon))["name"]
    secret = engine.secrets.peek(name)
    if secret is None:
        return error_response(404, "no-password", "this addon has no password recorded (removed?)", headers=HEADERS)
    return web.json_response({"user": "default", "password": secret}, headers=HEADERS)
