"""The installation's Docker hosts (engine/hosts.py): list, add, drain, remove. The operator's alone
(adapters/http/ownership.py OPERATOR_ONLY): a host is the installation's, never an app's."""

from __future__ import annotations

from aiohttp import web

from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object
from adapters.http.keys import ENGINE

routes = web.RouteTableDef()

FIELDS = {"name", "docker_url", "bind", "ports", "memory_mib", "tls"}


@routes.get("/v1/hosts")
async def listed(request: web.Request) -> web.Response:
    return web.json_response({"hosts": await request.app[ENGINE].hosts.list()})


@routes.get("/v1/hosts/{host}")
async def one(request: web.Request) -> web.Response:
    [host] = await request.app[ENGINE].hosts.list(request.match_info["host"])
    return web.json_response({"host": host})


@routes.post("/v1/hosts")
async def add(request: web.Request) -> web.Response:
    """As hosts.json describes a host: name, docker_url, bind, ports [first, last], memory_mib, tls (tcp://)."""
    body = await json_object(request)
    if unknown := sorted(set(body) - FIELDS):
        raise BadRequest(f"unknown field {unknown[0]!r}: a host has {', '.join(sorted(FIELDS))}", rule="invalid-field",
                         field=unknown[0])
    for field in ("name", "docker_url", "bind"):
        if not isinstance(body.get(field), str):
            raise BadRequest(f"{field} is required, as text", rule="invalid-field", field=field)
    ports = body.get("ports")
    if not (isinstance(ports, list) and len(ports) == 2 and all(type(p) is int for p in ports)):
        raise BadRequest("ports is required: [FIRST, LAST], e.g. [40000, 40999]", rule="invalid-field", field="ports")
    if type(body.get("memory_mib")) is not int:
        raise BadRequest("memory_mib is required, a whole number of MiB", rule="invalid-field", field="memory_mib")
    if body.get("tls") is not None and not isinstance(body["tls"], dict):
        raise BadRequest("tls is {\"ca\": PATH, \"cert\": PATH, \"key\": PATH}", rule="invalid-field", field="tls")
    added = await request.app[ENGINE].hosts.add(body["name"], body["docker_url"], body["bind"], ports[0], ports[1],
                                                body["memory_mib"], body.get("tls"))
    return web.json_response({"host": added}, status=201, headers={"Location": f"/v1/hosts/{added['name']}"})


@routes.post("/v1/hosts/{host}/drain")
async def drain(request: web.Request) -> web.Response:
    return web.json_response({"host": await request.app[ENGINE].hosts.drain(request.match_info["host"])}, status=202)


@routes.delete("/v1/hosts/{host}")
async def remove(request: web.Request) -> web.Response:
    return web.json_response({"host": await request.app[ENGINE].hosts.remove(request.match_info["host"])})
