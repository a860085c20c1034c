"""Operations (the sagas' durable logs), the read-model replay check, and health."""

from __future__ import annotations

from aiohttp import web

from adapters.http.keys import ENGINE
from adapters.http.ownership import visible
from engine.app import Engine

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/v1/operations")
async def list_operations(request: web.Request) -> web.Response:
    addon = request.query.get("addon") or None
    return web.json_response({"operations": visible(request, await request.app[ENGINE].operations(addon))})


@routes.get("/v1/operations/{operation_id}")
async def get_operation(request: web.Request) -> web.Response:
    operation = await operation_view(request.app[ENGINE], request.match_info["operation_id"])
    return web.json_response({"operation": operation})


@routes.post("/v1/operations/{operation_id}/retry")
async def retry_operation(request: web.Request) -> web.Response:
    """An operator's retry of an operation whose compensation could not finish (its addon needs attention)."""
    operation = await request.app[ENGINE].retry_operation(request.match_info["operation_id"])
    return web.json_response({"operation": operation}, status=202)


@routes.post("/v1/admin/replay")
async def replay(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ENGINE].replay())


async def operation_view(engine: Engine, operation_id: str, wait: bool = False, timeout: float = 0) -> dict:
    """The operation as recorded now (or, with `wait`, once finished or after `timeout` s), with
    the timeline its read-model row keeps: when it and each step started and ended, and what its
    compensation did. With timeout=0 the engine never waits for the saga; it only lets the read
    models catch up with what the operation recorded so far, so both halves agree."""
    operation = await engine.wait_for_operation(operation_id, timeout=timeout if wait else 0)
    row = next((r for r in await engine.operations(operation["addon"]) if r["id"] == operation["id"]), {})
    times = {s["name"]: s for s in row.get("steps", [])}
    steps = [
        {**step, "started_at": times.get(step["name"], {}).get("started_at"),
         "ended_at": times.get(step["name"], {}).get("ended_at")}
        for step in operation["steps"]
    ]
    return {**operation, "started_at": row.get("started_at"), "finished_at": row.get("finished_at"),
            "compensation": row.get("compensation"), "requested_by": row.get("requested_by"), "steps": steps}
