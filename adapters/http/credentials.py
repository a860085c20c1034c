"""Password rotation (issue 15): POST /v1/apps/{app}/addons/{addon}/credentials/rotate starts an operation
of kind `rotate_credentials` (engine/credentials_rotation.py), followed like a plan change. `{addon}` is
an addon ID or `redis` (the app's only Redis addon). The new password is shown only where the app's is:
its variables (GET /v1/apps/{app}/variables)."""

from __future__ import annotations

from aiohttp import web

from adapters.http.addons import outcome, wait_options
from adapters.http.backups import where
from adapters.http.keys import ENGINE

routes = web.RouteTableDef()


@routes.post("/v1/apps/{app}/addons/{addon}/credentials/rotate")
async def rotate(request: web.Request) -> web.Response:
    """`rotate-credentials`: 202 with the operation (with ?wait=true, once it has ended)."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    requested = await request.app[ENGINE].credentials.rotate(app, addon)
    return await outcome(request, app, requested, wait, timeout, done_status=200)
