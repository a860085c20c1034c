"""The engine versions an addon can run, with the exact package each host's image was built from; and
the version one addon runs with the upgrades available to it (reference, "Database Upgrade")."""

from __future__ import annotations

from aiohttp import web

from adapters.http.addons import outcome, wait_options
from adapters.http.backups import where
from adapters.http.inputs import json_object, text_field
from adapters.http.keys import ENGINE
from domain.errors import UnknownAddon

routes = web.RouteTableDef()


@routes.get("/v1/addon_providers/{provider}/versions")
async def versions(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    if provider != "redis":
        raise UnknownAddon(f"unknown addon provider {provider!r}; this installation provides 'redis'")
    return web.json_response({"versions": await request.app[ENGINE].version_list()})


@routes.get("/v1/apps/{app}/addons/{addon}/version")
async def addon_version(request: web.Request) -> web.Response:
    """`database-version`: `{addon}` is an addon ID or `redis` (the app's only Redis addon)."""
    return web.json_response({"version": await request.app[ENGINE].database_version.show(*where(request))})


@routes.post("/v1/apps/{app}/addons/{addon}/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    """`database-upgrade [VERSION]`: {"version": "8.1.8"}, or no body for the next allowed step."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    version = text_field(await json_object(request), "version", required=False) if request.can_read_body else None
    requested = await request.app[ENGINE].database_version.upgrade(app, addon, version)

    async def upgrade_asked() -> dict:
        return {"upgrade": {k: requested[k] for k in ("from", "to", "engine", "kind", "note")}}

    return await outcome(request, app, requested, wait, timeout, done_status=200, more=upgrade_asked)

