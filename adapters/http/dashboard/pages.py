"""The dashboard's pages (GET): sign-in, the apps and their addons, and an addon's tabs after the
reference's "Database Dashboard": Overview, Settings (General, Features), Users, Backups, Operations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from aiohttp import web

from adapters.http.dashboard.keys import SESSION
from adapters.http.dashboard.render import MISSING_UPLOT, page, uplot_present
from adapters.http.errors import scrub
from adapters.http.ownership import access_of
from adapters.http.keys import ENGINE
from domain.errors import DomainError

routes = web.RouteTableDef()

ADDON = "/dashboard/apps/{app}/addons/{addon}"
TABS = {"overview": "Overview", "general": "Settings › General", "features": "Settings › Features",
        "users": "Users", "backups": "Backups", "operations": "Operations"}
# Reference, "Database Users": Scalingo does not use ACLs; the single default user has every right.
ACL = "user default on {password} ~* &* +@all"


def base_context(request: web.Request) -> dict:
    session = request.get(SESSION)
    return {"csrf": session.csrf if session else "", "signed_in": session is not None}


@routes.get("/dashboard")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/dashboard/apps")


@routes.get("/dashboard/signin")
async def sign_in_page(request: web.Request) -> web.Response:
    if request.get(SESSION) is not None:
        raise web.HTTPSeeOther("/dashboard/apps")
    return page("signin.html", next=request.query.get("next", ""), error=None, **base_context(request))


@routes.get("/dashboard/apps")
async def apps_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    apps = []
    for app in await asyncio.to_thread(engine.views.apps):
        if not access_of(request).owns(app):  # a token scoped to apps sees its own only
            continue
        apps.append({"name": app, "addons": await engine.addons(app)})
    return page("apps.html", apps=apps, **base_context(request))


@routes.get(ADDON)
async def addon_root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(request.path.rstrip("/") + "/overview")


@routes.get(ADDON + "/{tab}")
async def addon_tab(request: web.Request) -> web.Response:
    tab = request.match_info["tab"]
    if tab not in TABS:
        return page("refused.html", status=404, heading="Not found",
                    message=f"no tab {tab!r}: the tabs are {', '.join(TABS)}", **base_context(request))
    return await tab_or_refusal(request, tab)


async def tab_or_refusal(request: web.Request, tab: str, error: str | None = None, status: int = 200) -> web.Response:
    """The tab (see tab_page), or for an unknown app or addon, a removed one, a page saying so: never the
    API's JSON error in the browser."""
    try:
        return await tab_page(request, tab, error=error, status=status)
    except DomainError as e:
        return page("refused.html", status=e.status, heading="Not found" if e.status == 404 else None,
                    message=scrub(str(e)), **base_context(request))


async def tab_page(request: web.Request, tab: str, error: str | None = None, status: int = 200) -> web.Response:
    """A tab of the addon's page; `error`: why the action just asked was refused, shown at the top."""
    engine = request.app[ENGINE]
    app, name = request.match_info["app"], request.match_info["addon"]
    addon = await engine.addon(app, name)
    context = {**base_context(request), "app": app, "addon": addon, "tab": tab, "tabs": TABS, "error": error,
               "base": f"/dashboard/apps/{app}/addons/{name}", "api": f"/v1/apps/{app}/addons/{name}"}
    context.update(await LOADERS[tab](request, engine, app, name, addon))
    return page(f"tab_{tab}.html", status=status, **context)


async def overview(request, engine, app, name, addon) -> dict:
    is_cluster = engine.plans.get(addon["plan"]).is_cluster
    return {"charts": uplot_present(), "missing_charts": MISSING_UPLOT, "is_cluster": is_cluster}


async def general(request, engine, app, name, addon) -> dict:
    plans = [p for p in engine.plan_list() if p["id"] != addon["plan"]]
    chosen = request.query.get("plan")
    confirm = next((p for p in plans if p["id"] == chosen), None)
    version = error = None
    try:
        version = await engine.database_version.show(app, name)
    except DomainError as e:  # a removed or busy addon: its version block says why
        error = str(e)
    return {"plans": plans, "confirm": confirm, "unknown_plan": chosen if chosen and not confirm else None,
            "version": version, "version_error": error}


async def features(request, engine, app, name, addon) -> dict:
    return {"settings": await engine.database.show(app, name)}


async def users(request, engine, app, name, addon) -> dict:
    return {"acl": ACL.format(password="<password>")}


async def backups(request, engine, app, name, addon) -> dict:
    plan = engine.plans.get(addon["plan"])
    schedule = await engine.backups.schedule(app, name)
    return {"backups": await engine.backups.list(app, name), "schedule": schedule, "utc_hour": utc_hour(schedule),
            "plan_backups": plan.backups, "hours": range(24)}


def utc_hour(schedule: dict) -> int:
    """The schedule's hour in UTC today (the form offers UTC hours, as the reference's does)."""
    local = datetime.now(ZoneInfo(schedule["zone"])).replace(hour=schedule["hour"], minute=schedule["minute"])
    return local.astimezone(timezone.utc).hour


async def operations(request, engine, app, name, addon) -> dict:
    # The page's script streams events after `position`: the read models' position read BEFORE the rows,
    # so an event the rows may not show yet (recorded, not yet projected, or applied between the two
    # reads) is streamed; one they already show is streamed again, which only redraws its card.
    position = await asyncio.to_thread(engine.views.position)
    rows = list(reversed(await engine.operations(name)))  # newest first
    return {"operations": rows, "position": position, "highlight": request.query.get("op", "")}


LOADERS = {"overview": overview, "general": general, "features": features, "users": users,
           "backups": backups, "operations": operations}
