"""Webhooks: an operator's (every app's notifications) under /v1/webhooks, an app's under
/v1/apps/{app}/webhooks. The signing secret is in the registration's answer only."""

from __future__ import annotations

from aiohttp import web

from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object, text_field
from adapters.http.keys import ENGINE
from adapters.http.ownership import access_of
from domain.webhook import InvalidWebhookUrl

routes = web.RouteTableDef()


async def _register(request: web.Request, app: str | None) -> web.Response:
    url = text_field(await json_object(request), "url", example="http://127.0.0.1:9000/notifications")
    try:
        registered = await request.app[ENGINE].webhooks.register(url, app, by_operator=access_of(request).is_operator)
    except InvalidWebhookUrl as e:
        raise BadRequest(f"field 'url': {e}", rule=e.rule, field="url") from None
    return web.json_response(registered, status=201)


@routes.post("/v1/webhooks")
async def register_for_all(request: web.Request) -> web.Response:
    """An operator's webhook: told of every app's addons."""
    return await _register(request, None)


@routes.get("/v1/webhooks")
async def list_all(request: web.Request) -> web.Response:
    return web.json_response({"webhooks": await request.app[ENGINE].webhooks.list()})


@routes.delete("/v1/webhooks/{webhook}")
async def remove_any(request: web.Request) -> web.Response:
    return web.json_response({"webhook": await request.app[ENGINE].webhooks.remove(request.match_info["webhook"])})


@routes.post("/v1/apps/{app}/webhooks")
async def register_for_app(request: web.Request) -> web.Response:
    return await _register(request, request.match_info["app"])


@routes.get("/v1/apps/{app}/webhooks")
async def list_of_app(request: web.Request) -> web.Response:
    return web.json_response({"webhooks": await request.app[ENGINE].webhooks.list(request.match_info["app"])})


@routes.delete("/v1/apps/{app}/webhooks/{webhook}")
async def remove_of_app(request: web.Request) -> web.Response:
    app, webhook = request.match_info["app"], request.match_info["webhook"]
    return web.json_response({"webhook": await request.app[ENGINE].webhooks.remove(webhook, app)})
