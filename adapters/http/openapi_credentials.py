"""The OpenAPI entry of password rotation (adapters/http/credentials.py)."""

from __future__ import annotations

from adapters.http.openapi_maintenance import ADDON, APP  # APP: the app-name pattern the server applies
from adapters.http.openapi_schemas import json_body, obj, ref

ROTATION = obj(addon=ref("Addon"), operation=ref("Operation"))


def paths(op, wait: list[dict]) -> dict:
    """`op` and the `wait` parameters are adapters/http/openapi.py's."""
    return {"/v1/apps/{app}/addons/{addon}/credentials/rotate": {"post": op(
        "Replace the addon's password with no downtime (`rotate-credentials`): an operation of kind "
        "`rotate_credentials` adds a new password beside the old one on every data node (a Business addon's "
        "replicas, Sentinels and HAProxy take it too), publishes it in the app's variables, restarts the app, "
        "then refuses the old one and closes the connections opened before the publication. The new password is "
        "shown only in the app's variables",
        {"200": json_body(ROTATION, "With wait=true: the new password is the only one accepted"),
         "202": json_body(ROTATION, "Requested: the operation runs in the background"),
         "409": json_body(ref("Error"), "The addon is busy with another operation (rule one-operation-per-addon), "
                                        "not running, needs attention, or was removed; the app has no restart method "
                                        "(rule rotation-needs-restart-method: it would be cut off, register one with "
                                        "apps-register); a data node or Sentinel of the addon is recorded down (rule "
                                        "rotation-needs-every-node)"),
         "500": json_body({"allOf": [ref("Error"), ROTATION]},
                          "With wait=true: the operation failed; before publish the old password alone is accepted "
                          "again, after it the new one stands and the old one is still accepted (rotate again)"),
         "503": json_body(ref("Error"), "The event store could not record the request (its disk full or read-only): "
                                        "nothing was started, try again (rule event-store-unavailable)")},
        [APP, ADDON, *wait])}}
