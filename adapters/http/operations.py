"""Operations (the sagas' durable logs), the read-model replay check, and health."""

from __future__ import annotations

from aiohttp import web

from adapters.http.keys import ENGINE

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/v1/operations")
async def list_operations(request: web.Request) -> web.Response:
    addon = request.query.get("addon") or None
    return web.json_response({"operations": await request.app[ENGINE].operations(addon)})


@routes.get("/v1/operations/{operation_id}")
async def get_operation(request: web.Request) -> web.Response:
    operation = await request.app[ENGINE].operation(request.match_info["operation_id"])
    return web.json_response({"operation": operation})


@routes.post("/v1/admin/replay")
async def replay(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ENGINE].replay())
