"""Apps: registered with the way the engine restarts them once their environment has changed
(reference, "Changing Plans": "after the operation is successful, the related app will be restarted")."""

from __future__ import annotations

from aiohttp import web

from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object, text_field
from adapters.http.keys import ENGINE
from domain.errors import UnknownApp

routes = web.RouteTableDef()

# The field each restart kind reads; the others are refused rather than silently ignored.
KIND_FIELDS = {"docker": "label", "hook": "url", "none": None}


@routes.post("/v1/apps")
async def register_app(request: web.Request) -> web.Response:
    """201 for a new app; 200 when the app was known already (its restart method is replaced)."""
    body = await json_object(request)
    name = text_field(body, "name", "app", example="my-app")
    restart = body.get("restart")
    if restart is None:
        restart = {"kind": "none"}
    elif not isinstance(restart, dict):
        raise BadRequest("field 'restart' must be an object, e.g. {\"kind\": \"docker\", \"label\": \"com.example.app=my-app\"}",
                         rule="invalid-field", field="restart")
    engine = request.app[ENGINE]
    known = await is_known(engine, name)
    registered = await engine.register_app(name, **restart_arguments(restart, prefix="restart."))
    return web.json_response({"app": app_body(registered)}, status=200 if known else 201,
                             headers={"Location": f"/v1/apps/{name}"})


@routes.get("/v1/apps/{app}")
async def get_app(request: web.Request) -> web.Response:
    return web.json_response({"app": app_body(await request.app[ENGINE].app(request.match_info["app"]))})


@routes.put("/v1/apps/{app}/restart")
async def change_restart(request: web.Request) -> web.Response:
    """Only for a known app (registered, or with addons): register a new one with POST /v1/apps."""
    app = request.match_info["app"]
    body = await json_object(request)
    engine = request.app[ENGINE]
    await engine.app(app)  # 404 for an unknown app
    registered = await engine.register_app(app, **restart_arguments(body))
    return web.json_response({"app": app_body(registered)})


def restart_arguments(body: dict, prefix: str = "") -> dict:
    """{"kind": "docker", "label": ...} | {"kind": "hook", "url": ...} | {"kind": "none"}; the engine
    checks the values (a label KEY=VALUE, a loopback URL) and names its rule when it refuses them."""
    # The document's RestartMethod has no other field (additionalProperties false): a misspelt "lable" or "URL"
    # is named rather than dropped (the API fuzzing test found it kept and ignored)
    unknown = sorted(set(body) - {"kind", *KIND_FIELDS.values()} - {None})
    if unknown:
        raise BadRequest(f"field {prefix + unknown[0]!r} is not a field of a restart method (kind, label, url)",
                         rule="invalid-field", field=prefix + unknown[0])
    try:
        kind = text_field(body, "kind", example="docker")
        label = text_field(body, "label", required=False)
        url = text_field(body, "url", required=False)
    except BadRequest as e:
        raise BadRequest(str(e).replace(f"field {e.field!r}", f"field {prefix + e.field!r}"), rule=e.rule,
                         field=prefix + e.field) from None
    wanted = KIND_FIELDS.get(kind)
    for name, value in (("label", label), ("url", url)):
        if value is not None and kind in KIND_FIELDS and name != wanted:
            uses = f"uses {wanted!r}" if wanted else "takes no other field"
            raise BadRequest(f"field {prefix + name!r} does not apply to restart kind {kind!r} (it {uses})",
                             rule="invalid-field", field=prefix + name)
    return {"restart": kind, "label": label, "url": url}


async def is_known(engine, app: str) -> bool:
    try:
        await engine.app(app)
    except UnknownApp:
        return False
    return True


def app_body(registered: dict) -> dict:
    return {"name": registered["app"], "restart": registered["restart"]}
