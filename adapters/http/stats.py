"""An addon's stats: each node's latest sample, and their history (engine/addon_stats.py)."""

from __future__ import annotations

from aiohttp import web

from adapters.http.backups import where
from adapters.http.keys import ENGINE

routes = web.RouteTableDef()


@routes.get("/v1/apps/{app}/addons/{addon}/stats")
async def current(request: web.Request) -> web.Response:
    """`{addon}`: an addon ID or `redis` (the app's only Redis addon)."""
    return web.json_response(await request.app[ENGINE].addon_stats(*where(request)))


@routes.get("/v1/apps/{app}/addons/{addon}/stats/history")
async def history(request: web.Request) -> web.Response:
    """`?period=hour|day|week` (default hour), `&node=ID` for one node's."""
    period = request.query.get("period", "hour")
    node = request.query.get("node") or None
    return web.json_response(await request.app[ENGINE].addon_stats_history(*where(request), node=node, period=period))
