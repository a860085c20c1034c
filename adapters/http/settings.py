"""Database settings resources (reference, "Persistence Mode", "Cache Mode", "Force TLS
Connections"): an addon's settings shown, and one setting turned on or off by an operation of kind
`change_settings` (`enable_force_tls` or `disable_force_tls` for force-tls: they also restart the app), followed like a plan
change; and the CA certificate that clients verify the addon's TLS certificate with.

`{addon}` is an addon ID or the provider name `redis` (the app's only Redis addon); `{setting}` is
rdb, aof, cache-mode or force-tls. The engine's database settings service resolves and checks both."""

from __future__ import annotations

from aiohttp import web

from adapters.http.addons import outcome, wait_options
from adapters.http.backups import where
from adapters.http.errors import BadRequest
from adapters.http.inputs import json_object
from adapters.http.keys import ENGINE

routes = web.RouteTableDef()

SETTINGS = "/v1/apps/{app}/addons/{addon}/settings"
TLS_CA = "/v1/apps/{app}/addons/{addon}/tls_ca"


def service(request: web.Request):
    return request.app[ENGINE].database


def enabled_field(body: dict) -> bool:
    if "enabled" not in body:
        raise BadRequest("missing field 'enabled' (true to turn the setting on, false to turn it off)",
                         rule="missing-field", field="enabled")
    if not isinstance(body["enabled"], bool):
        raise BadRequest(f"field 'enabled' must be true or false, got {body['enabled']!r}",
                         rule="invalid-field", field="enabled")
    return body["enabled"]


@routes.get(SETTINGS)
async def show_settings(request: web.Request) -> web.Response:
    return web.json_response({"settings": await service(request).show(*where(request))})


@routes.put(SETTINGS + "/{setting}")
async def change_setting(request: web.Request) -> web.Response:
    """Reference: each setting's "Enable" button; {"enabled": false} turns it off."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    enabled = enabled_field(await json_object(request))
    requested = await service(request).change(app, addon, request.match_info["setting"], enabled)

    async def settings() -> dict:  # as they are now: the new ones once the operation has succeeded
        return {"settings": await service(request).show(app, requested["addon"]), "warnings": requested["warnings"]}

    return await outcome(request, app, requested, wait, timeout, done_status=200, more=settings)


@routes.get(TLS_CA)
async def tls_ca(request: web.Request) -> web.Response:
    """`tls-ca`: the CA certificate (PEM) to verify the addon's server certificate with."""
    pem = await service(request).tls_ca(*where(request))
    return web.Response(text=pem, content_type="application/x-pem-file")
