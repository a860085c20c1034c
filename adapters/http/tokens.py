"""Access tokens scoped to apps (the operator's alone: adapters/http/ownership.py refuses them to a scoped
token). A token's secret is in its creation's answer only."""

from __future__ import annotations

from aiohttp import web

from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object
from adapters.http.keys import ENGINE
from domain.access_token import InvalidAccessToken

routes = web.RouteTableDef()


@routes.post("/v1/tokens")
async def create(request: web.Request) -> web.Response:
    body = await json_object(request)
    unknown = sorted(set(body) - {"name", "apps", "grants"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: a token has a name, apps and grants", rule="invalid-field",
                         field=unknown[0])
    try:
        created = await request.app[ENGINE].access.create(body.get("name"), body.get("apps"), body.get("grants"))
    except InvalidAccessToken as e:
        raise BadRequest(str(e), rule=e.rule, field=e.field) from None
    return web.json_response(created, status=201, headers={"Location": f"/v1/tokens/{created['token']['id']}"})


@routes.get("/v1/tokens")
async def listed(request: web.Request) -> web.Response:
    return web.json_response({"tokens": await request.app[ENGINE].access.list()})


@routes.delete("/v1/tokens/{token}")
async def revoke(request: web.Request) -> web.Response:
    return web.json_response({"token": await request.app[ENGINE].access.revoke(request.match_info["token"])})
