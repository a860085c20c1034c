"""Addon resources, shaped after the reference: plans, an app's addons (added, changed to another
plan, removed), its variables."""

from __future__ import annotations

from aiohttp import web

from adapters.http.errors import error_response
from adapters.http.inputs import flag_query, int_query, json_object, text_field
from adapters.http.keys import ENGINE
from adapters.http.operations import operation_view
from domain.errors import DomainError, UnknownAddon

routes = web.RouteTableDef()


@routes.get("/v1/addon_providers/{provider}/plans")
async def plans(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    if provider != "redis":
        raise UnknownAddon(f"unknown addon provider {provider!r}; this installation provides 'redis'")
    return web.json_response({"plans": request.app[ENGINE].plan_list()})


@routes.get("/v1/apps/{app}/addons")
async def list_addons(request: web.Request) -> web.Response:
    return web.json_response({"addons": await request.app[ENGINE].addons(request.match_info["app"])})


@routes.post("/v1/apps/{app}/addons")
async def add_addon(request: web.Request) -> web.Response:
    app = request.match_info["app"]
    wait, timeout = wait_options(request)
    body = await json_object(request)
    plan = text_field(body, "plan_id", "plan", example="redis-starter-1024")
    provider = text_field(body, "addon_provider_id", "provider", required=False) or "redis"
    version = text_field(body, "version", required=False)
    engine = request.app[ENGINE]
    requested = await engine.add_addon(app, plan, provider=provider, version=version)
    return await outcome(request, app, requested, wait, timeout, done_status=201)


@routes.get("/v1/apps/{app}/addons/{addon}")
async def get_addon(request: web.Request) -> web.Response:
    row = await request.app[ENGINE].addon(request.match_info["app"], request.match_info["addon"])
    return web.json_response({"addon": row})


@routes.get("/v1/apps/{app}/addons/{addon}/nodes")
async def nodes(request: web.Request) -> web.Response:
    """The addon's cluster topology (`nodes`): its nodes, with their role, place, state, and the primary."""
    rows = await request.app[ENGINE].nodes(request.match_info["app"], request.match_info["addon"])
    return web.json_response({"nodes": rows})


@routes.patch("/v1/apps/{app}/addons/{addon}")
async def change_plan(request: web.Request) -> web.Response:
    """Reference, "Changing Plans" (`addons-upgrade`): the same request upgrades and downgrades."""
    app = request.match_info["app"]
    wait, timeout = wait_options(request)
    body = await json_object(request)
    plan = text_field(body, "plan_id", "plan", example="redis-starter-2048")
    requested = await request.app[ENGINE].change_plan(app, request.match_info["addon"], plan)
    return await outcome(request, app, requested, wait, timeout, done_status=200)


@routes.delete("/v1/apps/{app}/addons/{addon}")
async def remove_addon(request: web.Request) -> web.Response:
    app = request.match_info["app"]
    wait, timeout = wait_options(request)
    requested = await request.app[ENGINE].remove_addon(app, request.match_info["addon"])
    return await outcome(request, app, requested, wait, timeout, done_status=200)


@routes.get("/v1/apps/{app}/variables")
async def variables(request: web.Request) -> web.Response:
    environment = await request.app[ENGINE].environment(request.match_info["app"])
    return web.json_response({"variables": [{"name": k, "value": v} for k, v in sorted(environment.items())]})


def wait_options(request: web.Request) -> tuple[bool, int]:
    return flag_query(request, "wait"), int_query(request, "timeout", default=120, low=1, high=600)


async def outcome(request: web.Request, app: str, requested: dict, wait: bool, timeout: int, done_status: int,
                  more=None) -> web.Response:
    """202 with the running operation; with wait=true, the finished one (or an error if it failed).
    `more`: an async function giving fields to add, read once the operation is as shown."""
    engine = request.app[ENGINE]
    op_id = requested["operation_id"]
    operation = await operation_view(engine, op_id, wait=wait, timeout=timeout)
    try:
        row = await engine.addon(app, requested["addon"])
    except DomainError:
        row = {"name": requested["addon"], "app": app}
    headers = {"Location": f"/v1/operations/{op_id}"}
    body = {"addon": row, "operation": operation, **(await more() if more else {})}
    if wait and operation["status"] == "failed":
        what = f"{operation['kind']} of {operation['addon']} failed: {operation['error'] or 'no detail recorded'}"
        if operation.get("compensation"):
            what += f"; then: {operation['compensation']}"
        return error_response(500, "operation-failed", what, headers=headers, body=body)
    status = done_status if wait and operation["status"] == "succeeded" else 202
    return web.json_response(body, status=status, headers=headers)
