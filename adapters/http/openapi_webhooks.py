"""The OpenAPI entries of webhooks (adapters/http/webhooks.py) and of the messages they are sent
(domain/notifications.py)."""

from __future__ import annotations

from adapters.http.openapi_schemas import APP_NAME, json_body, obj, ref
from domain.notifications import TYPES

APP = {"name": "app", "in": "path", "required": True, "schema": APP_NAME, "description": "App name"}
WEBHOOK = {"name": "webhook", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"},
           "description": "Webhook ID"}
BAD_APP = json_body(ref("Error"), "Not an app name (rule invalid-name)")  # domain.errors.InvalidName: 400
UNKNOWN = json_body(ref("Error"), "Unknown webhook (rule unknown-webhook), or unknown app")

SCHEMAS = {
    "Webhook": obj(
        id={"type": "string", "format": "uuid", "description": "From the URL and the scope: registering again "
                                                                "changes nothing"},
        url={"type": "string"}, app={"type": ["string", "null"], "description": "null: every app (an operator's)"},
        registered_at={"type": "string", "format": "date-time"},
        position={"type": "integer", "description": "The last event of the log it is done with"},
        delivered={"type": "integer"},
        dead_letters={"type": "integer", "description": "Messages given up after a day of retries"},
        retrying={"type": ["string", "null"], "description": "The delivery being retried now (its ID), if any"},
        attempts={"type": "integer", "description": "Its failed attempts so far"},
        failing_since={"type": ["string", "null"], "format": "date-time", "description": "Its first failure"},
        last_error={"type": ["string", "null"]}, last_error_at={"type": ["string", "null"], "format": "date-time"}),
    "Notification": {**obj(
        id={"type": "string", "format": "uuid",
            "description": "The delivery's ID, also in the X-Redis-Addons-Delivery header: the same when it is sent "
                          "again (a retry, an engine restart), so a receiver drops duplicates"},
        type={"enum": list(TYPES)}, app={"type": "string"}, addon={"type": "string"},
        node={"type": "string", "description": "node.down and node.up: the node's ID (its container)"},
        role={"enum": ["data", "sentinel", "proxy"]}, host={"type": "string"},
        observed_by={"enum": ["engine", "sentinels"], "description": "node.down and node.up: who saw it (a Business "
                     "addon's node is told of by both, each message with its own ID)"},
        reason={"type": "string"}, at={"type": "string", "format": "date-time"},
        operation=obj(id={"type": "string"}, kind={"type": "string"}), backup={"type": "string"},
        version={"type": "string"}, nodes={"type": "array", "items": {"type": "string"}},
        build={"type": "string", "description": "addon.build_outdated: the new build, 'sha256:' and the SHA-256 of its "
                                                "root filesystem, the same on every host"}),
        "description": "The JSON body POSTed to a webhook. X-Redis-Addons-Signature: sha256=HMAC-SHA256 of the body "
                       "with the webhook's signing secret (hex); X-Redis-Addons-Event: its type. Sent at least once: "
                       "until a receiver answers 2xx it is retried with backoff (waits growing from 0.5 s to 5 min) "
                       "for 24 h, the webhook's later messages waiting behind it (its failed attempts and last error "
                       "show in the webhook list); only then is it counted a dead letter. A Business addon's node "
                       "going down or up is told twice, each with its own ID: once as the engine saw it "
                       "(observed_by engine) and once as its Sentinels did (observed_by sentinels)"},
}


def paths(op) -> dict:
    """`op` is adapters/http/openapi.py's."""
    body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["url"], "properties": {"url": {
            "type": "string", "examples": ["http://127.0.0.1:9000/notifications"],
            "description": "http on loopback (127.0.0.0/8, ::1, localhost: the operator only), or https anywhere; no credentials"}}}}}}
    registered = json_body(obj(webhook=ref("Webhook"), secret={
        "type": "string", "description": "The signing secret: shown in a registration's answer only"}),
        "Registered (or registered already): POSTs a Notification on each node down or up, cluster degraded or "
        "redundant, operation needing attention, scheduled backup failed, addon build outdated")
    bad_url = json_body(ref("Error"), "Not a URL, or http off loopback (rule webhook-url, field url), or a bad body; "
                                      "on an app's route also not an app name (rule invalid-name)")
    listed = json_body(obj(webhooks={"type": "array", "items": ref("Webhook")}), "Webhooks, with their deliveries")
    removed = json_body(obj(webhook=ref("Webhook")), "Removed: it is sent nothing more")
    return {
        "/v1/webhooks": {
            "post": op("Register an operator's webhook: told of every app's addons", {"201": registered, "400": bad_url},
                       body=body, tag="webhooks"),
            "get": op("Every webhook, an operator's and the apps'", {"200": listed}, tag="webhooks")},
        "/v1/webhooks/{webhook}": {
            "delete": op("Remove a webhook", {"200": removed, "404": UNKNOWN}, [WEBHOOK], tag="webhooks")},
        "/v1/apps/{app}/webhooks": {
            "post": op("Register a webhook told of this app's addons",
                       {"201": registered, "400": bad_url, "404": UNKNOWN, "403": json_body(ref("Error"), (
                           "A loopback URL from a token scoped to apps: only the operator points the engine at "
                           "this machine's own services (rule loopback-webhook-needs-operator)"))},
                       [APP], body, tag="webhooks"),
            "get": op("The app's webhooks", {"200": listed, "400": BAD_APP, "404": UNKNOWN}, [APP], tag="webhooks")},
        "/v1/apps/{app}/webhooks/{webhook}": {
            "delete": op("Remove one of the app's webhooks", {"200": removed, "404": UNKNOWN}, [APP, WEBHOOK],
                         tag="webhooks")},
    }
