"""The OpenAPI 3.1 document of the API, written by hand (a test checks it names every route)."""

from __future__ import annotations

from aiohttp import web

from adapters.http.inputs import MAX_BODY
from adapters.http import openapi_maintenance as maintenance
from adapters.http import openapi_stats
from adapters.http import openapi_credentials
from adapters.http import openapi_webhooks as webhooks
from adapters.http import openapi_metrics as metrics
from adapters.http import openapi_tokens as tokens
from adapters.http import openapi_hosts
from adapters.http.openapi_schemas import APP_NAME, SCHEMAS, json_body, obj, ref

routes = web.RouteTableDef()


ERROR = json_body(ref("Error"), "The request was refused; `rule` names the rule, `message` says what to fix")
ERRORS = {
    "400": ERROR,
    "401": json_body(ref("Error"), "Missing or invalid bearer token"),
    "404": json_body(ref("Error"), "Unknown app, addon, operation or route; for a token scoped to apps, also "
                                   "another app's (answered word for word as a non-existent one)"),
}
# Every route may also answer these (tests/unit/test_openapi_statuses.py reads each handler for the rest).
INTERNAL = "an unexpected error (rule internal-error): the message names the request to find in the server log"
TOO_LARGE = json_body(ref("Error"), f"The body is over {MAX_BODY // 1024} KiB (rule body-too-large)")
REMOVED = json_body(ref("Error"), "The addon was removed (rule addon-removed)")
APP_LABEL_409 = json_body(ref("Error"), "The docker restart's label finds database containers the engine runs "
                                        "(rule restart-only-the-apps-own-containers: the message names them)")
APP = {"name": "app", "in": "path", "required": True, "schema": APP_NAME, "description": "App name"}
ADDON = {"name": "addon", "in": "path", "required": True, "schema": {"type": "string"}, "description": "Addon ID, e.g. my-app-3030"}
WAIT = [
    {"name": "wait", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "Answer when the operation has finished instead of at once"},
    {"name": "timeout", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 600, "default": 120},
     "description": "With wait=true: seconds to wait at most (202 if the operation is still running then)"},
]
ACCEPTED = json_body(obj(addon=ref("Addon"), operation=ref("Operation")),
                     "Requested: the operation runs in the background (also: wait=true timed out)")
FAILED = json_body({"allOf": [ref("Error"), obj(addon=ref("Addon"), operation=ref("Operation"))]},
                   "With wait=true: the operation failed; `error.message` holds its error (rule operation-failed)")
BUSY = json_body(ref("Error"), "Busy with another operation, or already removed")
BACKUP_ADDON = {**ADDON, "description": "Addon ID, e.g. my-app-3030, or `redis`: the app's only Redis addon"}
BACKUP = {"name": "backup", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "Backup ID, or `latest`: the most recent successful backup"}
BACKUP_OPERATION = obj(addon=ref("Addon"), backup=ref("Backup"), operation=ref("Operation"))
# A restore says which addon and app the backup was made of (another one's, for a fork).
RESTORE_OPERATION = obj(addon=ref("Addon"), backup=ref("Backup"), operation=ref("Operation"),
                        from_addon={"type": "string"}, from_app={"type": "string"})
BACKUP_FAILED = json_body({"allOf": [ref("Error"), BACKUP_OPERATION]},
                          "With wait=true: the operation failed; `error.message` holds its error (rule operation-failed)")
ARCHIVE = {
    "description": "The archive (a .tar.gz holding dump.rdb), decrypted as it is sent: stored encrypted at rest",
    "headers": {
        "Content-Disposition": {"schema": {"type": "string"}, "description": "attachment; filename=\"20261128000608_my_app_4553.tar.gz\""},
        "ETag": {"schema": {"type": "string"}, "description": "The archive's SHA-256 (hex), quoted"},
        "Repr-Digest": {"schema": {"type": "string"}, "description": "RFC 9530: sha-256=:BASE64: of the whole archive"},
        "X-Backup-SHA256": {"schema": {"type": "string"}, "description": "The whole archive's SHA-256 in hex"},
        "Accept-Ranges": {"schema": {"const": "bytes"}},
    },
    "content": {"application/gzip": {"schema": {"type": "string", "contentEncoding": "binary"}}},
}
SETTING = {"name": "setting", "in": "path", "required": True, "schema": {"enum": ["rdb", "aof", "cache-mode", "force-tls"]},
           "description": "The setting (`cache_mode` and `force_tls` are accepted too); another name is a 400 naming these"}
SETTINGS_OPERATION = obj(addon=ref("Addon"), operation=ref("Operation"), settings=ref("DatabaseSettings"),
                         warnings={"type": "array", "items": {"type": "string"},
                                   "description": "Where the requested settings can lose data"})
UPGRADE_OPERATION = obj(addon=ref("Addon"), operation=ref("Operation"), upgrade=obj(
    **{"from": {"type": "string"}}, to={"type": "string"}, engine={"enum": ["redis", "valkey"]},
    kind={"enum": ["patch", "minor", "major"]}, note={"type": "string", "description": "What to know before it"}))
# An event position a client sends, in ASCII digits; a larger one is a 400 (the log's ids are 64-bit).
POSITION = {"type": "integer", "minimum": 0, "maximum": 2**63 - 2, "default": 0}
# One event of the stream (OpenAPI before 3.2: a text/event-stream's `schema` describes each event).
STREAM_EVENT = {"type": "object", "required": ["id", "event", "data"], "properties": {
    "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's position: resume after it with Last-Event-ID"},
    "event": {"type": "string", "description": "The event's type"},
    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": ref("Event")}}}
STORE_DOWN = ("the event store cannot record (its disk full or read-only; rule event-store-unavailable): nothing "
              "was changed, try again later; or (rule read-models-behind) it was recorded but the read models "
              "cannot show it yet: it shows once they can write, do not ask again")
RESTART_BODY = {"required": True, "content": {"application/json": {"schema": ref("RestartMethod")}}}


def op(summary: str, responses: dict, parameters=(), body=None, public=False, tag="addons") -> dict:
    responses = {**({} if public else ERRORS), **responses}  # a route's own description wins
    if body:
        responses.setdefault("413", TOO_LARGE)
    own = responses.get("500")
    responses["500"] = {**own, "description": f"{own['description']}; or {INTERNAL}"} if own else \
        json_body(ref("Error"), INTERNAL[0].upper() + INTERNAL[1:])
    if not public:  # any command may meet an event store that cannot write (its disk full): nothing is changed
        own = responses.get("503")
        responses["503"] = {**own, "description": f"{own['description']}; or {STORE_DOWN}"} if own else \
            json_body(ref("Error"), STORE_DOWN[0].upper() + STORE_DOWN[1:])
    spec = {"summary": summary, "tags": [tag], "responses": dict(sorted(responses.items()))}
    if parameters:
        spec["parameters"] = list(parameters)
    if body:
        spec["requestBody"] = body
    if public:
        spec["security"] = []
    return spec


PATHS = {
    "/health": {"get": op("Liveness (no token needed)", {"200": json_body(obj(status={"const": "ok"}), "Alive")}, public=True, tag="meta")},
    "/v1/openapi.json": {"get": op("This document", {"200": json_body({"type": "object"}, "OpenAPI 3.1")}, tag="meta")},
    "/v1/addon_providers/{provider}/plans": {"get": op(
        "Plans of an addon provider (only `redis` here)",
        {"200": json_body(obj(plans={"type": "array", "items": ref("Plan")}), "The plan catalog")},
        [{"name": "provider", "in": "path", "required": True, "schema": {"const": "redis"}}])},
    "/v1/addon_providers/{provider}/versions": {"get": op(
        "Engine versions (`versions`): each of the catalog, whether it has TLS, and the exact package its image on "
        "each host was built from, read from the image (one the setup has not rebuilt yet shows what it holds); "
        "nodes already running keep the image they were made from",
        {"200": json_body(obj(versions={"type": "array", "items": ref("EngineVersion")}), "The version catalog")},
        [{"name": "provider", "in": "path", "required": True, "schema": {"const": "redis"}}])},
    "/v1/apps/{app}/addons": {
        "get": op("An app's addons", {"200": json_body(obj(addons={"type": "array", "items": ref("Addon")}), "Addons")}, [APP]),
        "post": op(
            "Provision an addon",
            {"201": json_body(obj(addon=ref("Addon"), operation=ref("Operation")), "With wait=true: provisioned"),
             "202": ACCEPTED, "409": ERROR, "500": FAILED, "507": json_body(ref("Error"), "No host has room for the plan"),
             "422": json_body(ref("Error"), "The plan cannot be used yet (a cluster plan: rule plan-not-available)")},
            [APP, *WAIT],
            {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["plan_id"],
                "properties": {
                    "addon_provider_id": {"type": "string", "const": "redis", "default": "redis"},
                    "plan_id": {"type": "string", "examples": ["redis-starter-1024"], "description": "`plan` is accepted too"},
                    "version": {"type": "string", "description": "Engine version; the catalog's default if absent"},
                }}}}}),
    },
    "/v1/apps": {"post": op(
        "Register an app with the way to restart it when its environment changes (again: replaces the method)",
        {"201": json_body(obj(app=ref("App")), "Registered"),
         "200": json_body(obj(app=ref("App")), "Known already: its restart method is replaced"),
         "409": APP_LABEL_409},
        body={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"],
            "properties": {"name": {**APP_NAME, "examples": ["my-app"], "description": "`app` is accepted too"},
                           "restart": {"oneOf": [ref("RestartMethod"), {"type": "null"}],
                                       "description": "Default (absent or null): {\"kind\": \"none\"}"}}}}}},
        tag="apps")},
    "/v1/apps/{app}": {"get": op(
        "An app (registered, or that has had an addon) and its restart method",
        {"200": json_body(obj(app=ref("App")), "The app")}, [APP], tag="apps")},
    "/v1/apps/{app}/restart": {"put": op(
        "Change how a known app is restarted",
        {"200": json_body(obj(app=ref("App")), "The app with its new restart method"), "409": APP_LABEL_409},
        [APP], RESTART_BODY, tag="apps")},
    "/v1/apps/{app}/addons/{addon}": {
        "get": op("One addon", {"200": json_body(obj(addon=ref("Addon")), "The addon")}, [APP, ADDON]),
        "patch": op(
            "Change the addon's plan (`addons-upgrade`: upgrade or downgrade): it is stopped, restarted on another host "
            "with the new plan's parameters and its data, verified, published, then the app is restarted",
            {"200": json_body(obj(addon=ref("Addon"), operation=ref("Operation")), "With wait=true: on the new plan"),
             "202": ACCEPTED, "409": json_body(ref("Error"), "Already on that plan, busy with another operation, not running, or removed"),
             "422": json_body(ref("Error"), "The plan cannot be used, or the data would not fit in it (the message says how much is used)"),
             "500": FAILED, "507": json_body(ref("Error"), "No other host has room for the plan"),
             "502": json_body(ref("Error"), "The addon's server could not be asked how much memory it uses (rule effect-failed)"),
             "503": json_body(ref("Error"), "The addon's server did not answer when asked how much memory it uses: "
                                            "try again (rule temporarily-unavailable)")},
            [APP, ADDON, *WAIT],
            {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["plan_id"],
                "properties": {"plan_id": {"type": "string", "examples": ["redis-starter-2048"], "description": "`plan` is accepted too"}},
            }}}}),
        "delete": op("Remove an addon (its backups are kept)",
                     {"200": json_body(obj(addon=ref("Addon"), operation=ref("Operation")), "With wait=true: removed"),
                      "202": ACCEPTED, "409": BUSY,
                      "500": FAILED},
                     [APP, ADDON, *WAIT]),
    },
    "/v1/apps/{app}/addons/{addon}/backups": {
        "get": op("The addon's backups, newest first (deleted ones are not listed)",
                  {"200": json_body(obj(backups={"type": "array", "items": ref("Backup")}), "Backups")},
                  [APP, BACKUP_ADDON], tag="backups"),
        "post": op(
            "Make a manual backup (`backups-create`): an operation of kind `backup` archives the addon's data",
            {"201": json_body(BACKUP_OPERATION, "With wait=true: the backup is done"),
             "202": json_body(BACKUP_OPERATION, "Requested: the operation runs in the background (also: wait=true timed out)"),
             "409": json_body(ref("Error"), "The addon is busy with another operation, or not running"),
             "422": json_body(ref("Error"), "A sandbox addon has no backups (rule no-backups-on-sandbox)"),
             "500": BACKUP_FAILED},
            [APP, BACKUP_ADDON, *WAIT], tag="backups"),
    },
    "/v1/apps/{app}/addons/{addon}/backups/{backup}": {"get": op(
        "One backup", {"200": json_body(obj(backup=ref("Backup")), "The backup")},
        [APP, BACKUP_ADDON, BACKUP], tag="backups")},
    "/v1/apps/{app}/addons/{addon}/backups/{backup}/archive": {"get": op(
        "The backup's archive (`backups-download`), streamed; one byte range may be asked for to resume a download",
        {"200": ARCHIVE, "206": {**ARCHIVE, "description": "The range asked for (`Content-Range: bytes START-END/SIZE`)"},
         "409": json_body(ref("Error"), "The backup is not done: running, failed or deleted (rule backup-not-done)"),
         "416": json_body(ref("Error"), "The range starts past the end of the archive (`Content-Range: bytes */SIZE`)"),
         "502": json_body(ref("Error"), "The archive is missing from the backup store (rule effect-failed), or "
                          "altered on disk where the range starts (rule backup-archive-altered, `at`: the byte of the "
                          "stored file). Altered further on: the stream is cut at the first altered chunk")},
        [APP, BACKUP_ADDON, BACKUP,
         {"name": "Range", "in": "header", "schema": {"type": "string", "examples": ["bytes=1048576-"]},
          "description": "One range of bytes; several ranges or a malformed one get the whole archive"},
         {"name": "If-Range", "in": "header", "schema": {"type": "string"},
          "description": "The ETag of the archive a partial download came from: another one gets the whole archive (200)"}],
        tag="backups")},
    "/v1/apps/{app}/addons/{addon}/backups/{backup}/restore": {"post": op(
        "Restore the addon's data from this backup: an operation of kind `restore` (`restore_cluster` for a Business "
        "addon), followed like a plan change. `{backup}` may be the ID of a backup of another addon of this "
        "installation, of any app, removed ones included (a fork); the answer's `from_addon` names it",
        {"200": json_body(RESTORE_OPERATION, "With wait=true: restored"),
         "202": json_body(RESTORE_OPERATION, "Requested: the operation runs in the background (also: wait=true timed out)"),
         "409": json_body(ref("Error"), "The backup is not done, the addon is busy or not running, or the backup comes from "
                                        "a newer engine version than the addon's"),
         "422": json_body(ref("Error"), "The backup's data would not fit in the addon's plan (rule dataset-fits-the-plan)"),
         "500": BACKUP_FAILED,
         "502": json_body(ref("Error"), "The addon's cluster has no primary recorded (rule effect-failed)"),
         "507": json_body(ref("Error"), "A Business addon: no two hosts have room for the new pair of data nodes "
                                        "(rule no-host-with-room)")},
        [APP, BACKUP_ADDON, BACKUP, *WAIT], tag="backups")},
    "/v1/apps/{app}/addons/{addon}/backup_schedule": {
        "get": op("When the daily backup runs", {"200": json_body(obj(schedule=ref("BackupSchedule")), "The schedule"),
                                                 "409": REMOVED},
                  [APP, BACKUP_ADDON], tag="backups"),
        "put": op(
            "Change when the daily backup runs (`backups-config --schedule-at`)",
            {"200": json_body(obj(schedule=ref("BackupSchedule")), "The new schedule"),
             "409": json_body(ref("Error"), "The addon was removed, or changed while this was asked (try again)"),
             "422": json_body(ref("Error"), "A sandbox addon has no backups (rule no-backups-on-sandbox)")},
            [APP, BACKUP_ADDON],
            {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["schedule_at"],
                "properties": {
                    "schedule_at": {"type": "string", "examples": ["3", "4:00 UTC", "4:30 America/New_York"],
                                    "description": "An hour (in `local_zone`), or \"H:MM ZONE\""},
                    "local_zone": {"type": "string", "examples": ["Europe/Paris"],
                                   "description": "The client machine's IANA time zone: needed when schedule_at names none"},
                }}}}}, tag="backups"),
    },
    "/v1/apps/{app}/addons/{addon}/nodes": {"get": op(
        "The addon's cluster (`nodes`): each node's role, host, address, ports, version and state (placed, running, "
        "down, retired), and which data node is the primary",
        {"200": json_body(obj(nodes={"type": "array", "items": ref("Node")}), "The nodes")},
        [APP, BACKUP_ADDON], tag="addons")},
    "/v1/apps/{app}/addons/{addon}/version": {"get": op(
        "The addon's engine version and the upgrades available to it, the next allowed one first (`database-version`; "
        "reference, \"Database Upgrade\"): none onto a retired build or, while the addon forces TLS, a build without "
        "TLS; `advice` says which upgrade a retired build must take, or why none is available",
        {"200": json_body(obj(version=ref("DatabaseVersion")), "The version"), "409": REMOVED},
        [APP, BACKUP_ADDON], tag="addons")},
    "/v1/apps/{app}/addons/{addon}/upgrade": {"post": op(
        "Upgrade the addon's engine (`database-upgrade [VERSION]`; reference, \"Database Upgrade\"): to `version`, "
        "or with no body the next allowed step; a safety backup (kind pre-upgrade) first. A Starter addon: an "
        "operation of kind `upgrade` stops the node, starts the new build at the same place on a copy of its data "
        "(refusing writes until published), verifies it, publishes, removes the old node and restarts the app; before "
        "publish a failure brings the old version back with its data. A Business addon: `upgrade_cluster` replaces "
        "its data nodes one at a time with no downtime (a minor step, or a major one the catalogue records as "
        "rolling), or `upgrade_cluster_stopped` refuses writes while the data moves through the safety backup into a "
        "new pair (a major step that does not roll); the app restarted at the end",
        {"200": json_body(UPGRADE_OPERATION, "With wait=true: upgraded"),
         "202": json_body(UPGRADE_OPERATION, "Requested: the operation runs in the background"),
         "400": json_body(ref("Error"), "A `version` that is not a non-empty string (rule invalid-field)"),
         "409": json_body(ref("Error"), "Off the upgrade path, with the rule's words and the upgrade available "
                                        "(rules upgrade-step-by-step, no-downgrade, upgrade-within-engine, "
                                        "upgrade-keeps-tls, version-retired, same-version, no-upgrade-available), "
                                        "a Business addon without a primary and a replica, or the addon is busy"),
         "500": json_body({"allOf": [ref("Error"), UPGRADE_OPERATION]},
                          "With wait=true: the operation failed; before publish the former version is back"),
         "502": json_body(ref("Error"), "A Business addon's cluster has no primary recorded (rule effect-failed)"),
         "507": json_body(ref("Error"), "A Business addon: no host has room for a new data node beside the old ones")},
        [APP, BACKUP_ADDON, *WAIT],
        {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"version": {"type": "string", "examples": ["8.1.8"],
                                                         "description": "The version to go to (default: the next "
                                                                        "allowed step)"}}}}}},
        tag="addons")},
    "/v1/apps/{app}/addons/{addon}/settings": {"get": op(
        "The addon's database settings (`settings`): persistence, cache mode, force TLS, and what is fixed",
        {"200": json_body(obj(settings=ref("DatabaseSettings")), "The settings"), "409": REMOVED},
        [APP, BACKUP_ADDON], tag="settings")},
    "/v1/apps/{app}/addons/{addon}/settings/{setting}": {"put": op(
        "Turn one setting on or off (`settings-enable`, `settings-disable`): an operation of kind `change_settings` "
        "rewrites the node's redis.conf and applies it to the running server (apply, verify, publish); for force-tls, "
        "an operation of kind `enable_force_tls` restarts the app with the rediss:// URL and then closes plaintext "
        "(restart_app, apply, verify, publish), and one of kind `disable_force_tls` opens plaintext and then restarts "
        "the app with the redis:// URL (apply, verify, publish, restart_app)",
        {"200": json_body(SETTINGS_OPERATION, "With wait=true: applied (`settings` shows the new values)"),
         "202": json_body(SETTINGS_OPERATION, "Requested: the operation runs in the background (also: wait=true timed out); "
                                              "`settings` shows the values still in force"),
         "409": json_body(ref("Error"), "The setting is already so (rule setting-changes-something), the addon is busy or "
                                        "not running, or force TLS on an engine version built without TLS "
                                        "(rule force-tls-on-tls-capable-builds: the message names the versions with TLS)"),
         "500": json_body({"allOf": [ref("Error"), SETTINGS_OPERATION]},
                          "With wait=true: the operation failed; before its publish step the former settings are back "
                          "(`disable_force_tls` failing at restart_app, after publish, keeps the new setting); "
                          "`error.message` holds its error")},
        [APP, BACKUP_ADDON, SETTING, *WAIT],
        {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean", "description": "true: turn it on; false: turn it off"}}}}}},
        tag="settings")},
    "/v1/apps/{app}/addons/{addon}/tls_ca": {"get": op(
        "The CA certificate (PEM) that signs the addon's server certificate (`tls-ca`): clients verify the "
        "rediss:// URL's server with it",
        {"200": {"description": "The CA certificate",
                 "content": {"application/x-pem-file": {"schema": {"type": "string"}}}},
         "409": json_body(ref("Error"), "The addon's engine version is built without TLS "
                                        "(rule force-tls-on-tls-capable-builds)")},
        [APP, BACKUP_ADDON], tag="settings")},
    "/v1/apps/{app}/variables": {"get": op(
        "The app's environment variables (REDIS_URL, SCALINGO_REDIS_URL, and REDIS_TLS_URL, SCALINGO_REDIS_TLS_URL "
        "on an addon serving TLS): the only payload holding a secret",
        {"200": json_body(obj(variables={"type": "array", "items": obj(name={"type": "string"}, value={"type": "string"})}), "Variables")},
        [APP])},
    "/v1/operations": {"get": op(
        "Operations (sagas), with their steps",
        {"200": json_body(obj(operations={"type": "array", "items": ref("Operation")}), "Operations")},
        [{"name": "addon", "in": "query", "schema": {"type": "string"}, "description": "Only this addon's"}], tag="operations")},
    "/v1/operations/{operation_id}": {"get": op(
        "One operation", {"200": json_body(obj(operation=ref("Operation")), "The operation")},
        [{"name": "operation_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}], tag="operations")},
    "/v1/operations/{operation_id}/retry": {"post": op(
        "Try again now an operation whose compensation could not finish (its addon needs attention)",
        {"202": json_body(obj(operation=ref("Operation")), "The operation, as recorded when the retry was asked"),
         "409": json_body(ref("Error"), "The operation does not need attention (rule retry-needs-attention)")},
        [{"name": "operation_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}], tag="operations")},
    "/v1/events": {"get": op(
        "A page of the event log",
        {"200": json_body(obj(events={"type": "array", "items": ref("Event")},
                              next={"type": "integer", "description": "Pass as `after` for the next page"}), "Events")},
        [{"name": "after", "in": "query", "schema": POSITION},
         {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}], tag="events")},
    "/v1/events/stream": {"get": op(
        "The event log as Server-Sent Events (`id`, `event` = type, `data` = the Event as JSON); "
        "a `: keep-alive` comment every 15 s when idle",
        {"200": {"description": "An endless text/event-stream", "content": {"text/event-stream": {"schema": STREAM_EVENT}}}},
        [{"name": "Last-Event-ID", "in": "header", "schema": POSITION, "description": "Resume after this event (wins over `after`)"},
         {"name": "after", "in": "query", "schema": POSITION}], tag="events")},
    "/v1/admin/replay": {"post": op(
        "Rebuild every read model from the log and compare with the live ones",
        {"200": json_body(ref("Replay"), "Comparison")}, tag="admin")},
}
PATHS.update(maintenance.paths(op, WAIT))
PATHS.update(openapi_stats.paths(op))
PATHS.update(metrics.paths(op))
PATHS.update(webhooks.paths(op))
PATHS.update(openapi_credentials.paths(op, WAIT))
PATHS.update(tokens.paths(op))
PATHS.update(openapi_hosts.paths(op))
tokens.mark_operator_only(PATHS)

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "redis-addons", "version": "0.1.0",
             "description": "Managed Redis databases as addons, on local Docker engines (shaped after Scalingo for Redis)."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": {"schemas": {**SCHEMAS, **maintenance.SCHEMAS, **openapi_stats.SCHEMAS, **webhooks.SCHEMAS, **tokens.SCHEMAS,
                                 **openapi_hosts.SCHEMAS},
                   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, **metrics.SECURITY_SCHEMES}},
}


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
