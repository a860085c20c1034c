"""Security updates reaching running nodes: the addons running an outdated build of their version, the
maintenance that moves one onto the current build, and the weekly window in which the engine does it."""

from __future__ import annotations


from aiohttp import web

from adapters.http.addons import outcome, wait_options
from adapters.http.backups import where
from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object, local_zone_of, text_field
from adapters.http.keys import ENGINE
from adapters.http.ownership import check_app, visible
from domain.maintenance_window import InvalidMaintenanceWindow

routes = web.RouteTableDef()


@routes.get("/v1/maintenance")
async def outdated(request: web.Request) -> web.Response:
    """Every addon with a node on an outdated build (`?app=` for one app's)."""
    app = request.query.get("app") or None
    check_app(request, app)  # a scoped token: its apps' only (adapters/http/ownership.py)
    return web.json_response({"addons": visible(request, await request.app[ENGINE].maintenance.outdated(app))})


@routes.post("/v1/apps/{app}/addons/{addon}/maintenance")
async def start(request: web.Request) -> web.Response:
    """`database-maintenance`: `{addon}` is an addon ID or `redis` (the app's only Redis addon)."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    requested = await request.app[ENGINE].maintenance.start(app, addon)

    async def maintenance_asked() -> dict:
        return {"maintenance": {k: requested[k] for k in ("version", "nodes")}}

    return await outcome(request, app, requested, wait, timeout, done_status=200, more=maintenance_asked)


@routes.get("/v1/apps/{app}/addons/{addon}/maintenance_window")
async def get_window(request: web.Request) -> web.Response:
    return web.json_response({"window": await request.app[ENGINE].maintenance.window(*where(request))})


@routes.put("/v1/apps/{app}/addons/{addon}/maintenance_window")
async def set_window(request: web.Request) -> web.Response:
    """{"window_at": "sunday 3", "local_zone": "Europe/Paris"} or {"window_at": "sun 4:00 UTC"}."""
    body = await json_object(request)
    window_at = text_field(body, "window_at", example="sun 4:00 UTC")
    local_zone = local_zone_of(body, "window_at", window_at, words_with_zone=3, example="sun 4:00 UTC")
    try:
        window = await request.app[ENGINE].maintenance.set_window(*where(request), window_at, local_zone)
    except InvalidMaintenanceWindow as e:
        raise BadRequest(f"field 'window_at': {e}", rule=e.rule, field="window_at") from None
    return web.json_response({"window": window})


@routes.delete("/v1/apps/{app}/addons/{addon}/maintenance_window")
async def remove_window(request: web.Request) -> web.Response:
    """No window: the addon is moved when its user asks (`database-maintenance`)."""
    return web.json_response({"window": await request.app[ENGINE].maintenance.set_window(*where(request), None, "UTC")})
