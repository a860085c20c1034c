"""The OpenAPI entries of maintenance (adapters/http/maintenance.py): the addons running an outdated build,
the move onto the current one, and the weekly window the engine does it in."""

from __future__ import annotations

from adapters.http.openapi_schemas import APP_NAME, json_body, obj, ref

ADDON = {"name": "addon", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "Addon ID, e.g. my-app-3030, or `redis`: the app's only Redis addon"}
APP = {"name": "app", "in": "path", "required": True, "schema": APP_NAME, "description": "App name"}
REMOVED = json_body(ref("Error"), "The addon was removed (rule addon-removed), or changed while this was asked: "
                                   "try again (rule one-operation-per-addon)")
NODE_BUILD = obj(id={"type": "string"}, host={"type": "string"}, version={"type": "string"},
                 build={"enum": ["current", "outdated", "unknown"],
                        "description": "current: the node runs the image its version's tag names now on its host; "
                                       "outdated: one the tag named before a rebuild (a security update); unknown: "
                                       "Docker could not say"},
                 why={"type": "string", "description": "Why the build is unknown"})
MAINTENANCE_OPERATION = obj(addon=ref("Addon"), operation=ref("Operation"), maintenance=obj(
    version={"type": "string", "examples": ["7.0.15"], "description": "The version it runs, and keeps"},
    nodes={"type": "array", "items": {"type": "string"}, "description": "The nodes on an outdated build"}))

SCHEMAS = {
    "NodeBuild": NODE_BUILD,
    "MaintenanceWindow": {"oneOf": [{"type": "null"}, obj(
        day={"enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
        hour={"type": "integer"}, minute={"type": "integer"}, zone={"type": "string", "examples": ["Europe/Paris"]},
        description={"type": "string", "examples": ["sundays at 3:00 Europe/Paris, for an hour"]},
        next_opening={"type": "string", "format": "date-time"})],
        "description": "null: no window, the addon is moved when its user asks"},
    "OutdatedAddon": obj(app={"type": "string"}, addon={"type": "string"}, plan={"type": "string"},
                         version={"type": "string"}, status={"type": "string"},
                         nodes={"type": "array", "items": ref("NodeBuild"), "description": "Its nodes on an outdated build"},
                         window=ref("MaintenanceWindow")),
}


def paths(op, wait: list[dict]) -> dict:
    """`op` and the `wait` parameters are adapters/http/openapi.py's."""
    window_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["window_at"],
        "properties": {
            "window_at": {"type": "string", "examples": ["sunday 3", "sun 4:00 UTC", "tue 22:30 America/New_York"],
                          "description": "A day of the week and an hour (H or H:MM), in `local_zone` unless it names "
                                         "a time zone"},
            "local_zone": {"type": "string", "examples": ["Europe/Paris"],
                           "description": "The client machine's IANA time zone: needed when window_at names none"}}}}}}
    window_answers = {"200": json_body(obj(window=ref("MaintenanceWindow")), "The window"), "409": REMOVED}
    return {
        "/v1/maintenance": {"get": op(
            "Every addon with a data node running an outdated build of its version (`maintenance`): a rebuilt image "
            "(a security update) took the version's tag, and the nodes made before run the old one",
            {"200": json_body(obj(addons={"type": "array", "items": ref("OutdatedAddon")}), "Outdated addons")},
            [{"name": "app", "in": "query", "schema": {"type": "string"}, "description": "Only this app's addons"}],
            tag="maintenance")},
        "/v1/apps/{app}/addons/{addon}/maintenance": {"post": op(
            "Move the addon onto the current build of the version it runs (`database-maintenance`): the upgrade's "
            "saga to the same version. A Starter addon: an operation of kind `maintenance` restarts its node on the "
            "new image at the same place with its data (a short downtime), then the app; a Business addon: one of "
            "kind `maintenance_cluster` replaces its data nodes one at a time with one coordinated switch (no "
            "downtime), then restarts the app",
            {"200": json_body(MAINTENANCE_OPERATION, "With wait=true: on the current build"),
             "202": json_body(MAINTENANCE_OPERATION, "Requested: the operation runs in the background"),
             "409": json_body(ref("Error"), "The addon runs the current build (rule maintenance-needs-an-outdated-"
                                            "build), is busy with another operation or not running (a Business addon "
                                            "without a replica in sync), or was removed"),
             "500": json_body({"allOf": [ref("Error"), MAINTENANCE_OPERATION]},
                              "With wait=true: the operation failed; before publish the old build serves on"),
             "502": json_body(ref("Error"), "Docker or the cluster's records could not be read (rule effect-failed)"),
             "503": json_body(ref("Error"), "Docker did not answer: try again (rule temporarily-unavailable)"),
             "507": json_body(ref("Error"), "A Business addon: no host has room for a new data node")},
            [APP, ADDON, *wait], tag="maintenance")},
        "/v1/apps/{app}/addons/{addon}/maintenance_window": {
            "get": op("The addon's weekly maintenance window", window_answers, [APP, ADDON], tag="maintenance"),
            "put": op("Set the weekly window (an hour) in which the engine moves the addon onto its version's current "
                      "build when it runs an outdated one (`database-maintenance-window --at`)",
                      {**window_answers, "200": json_body(obj(window=ref("MaintenanceWindow")), "The new window")},
                      [APP, ADDON], window_body, tag="maintenance"),
            "delete": op("No window: the addon is moved only when its user asks (`database-maintenance-window --off`)",
                         {**window_answers, "200": json_body(obj(window={"type": "null"}), "No window")},
                         [APP, ADDON], tag="maintenance"),
        },
    }
