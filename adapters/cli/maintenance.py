"""Security updates reaching running nodes: `maintenance` lists the addons running an outdated build of
their version; `database-maintenance` moves one onto the current build (the upgrade's saga to the same
version: a Starter addon's node restarted with its data, then the app; a Business addon's nodes replaced
one at a time with no downtime); `database-maintenance-window` shows or sets the weekly hour in which the
engine does it by itself."""

from __future__ import annotations

import os

from adapters.cli.backups import addon_path, local_zone
from adapters.cli.client import Api, ApiError, CliError
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import PLAN_CHANGE_WAIT_S, follow_steps

MAINTENANCE_WAIT_S = PLAN_CHANGE_WAIT_S  # the data files are saved and copied, as for an upgrade


def maintenance(api: Api, args) -> int:
    rows = api.get("/v1/maintenance", **({"app": args.app} if args.app else {}))["addons"]
    if not rows:
        print("-----> Every addon runs the current build of its version")
        return 0
    print("-----> A security update is available for these addons: run database-maintenance, or let their window come")
    print(table(["APP", "ADDON", "VERSION", "OUTDATED NODES", "WINDOW"],
                [[r["app"], r["addon"], r["version"], ", ".join(n["id"] for n in r["nodes"]),
                  r["window"]["description"] if r["window"] else "none"] for r in rows]))
    return 0


def database_maintenance(api: Api, args) -> int:
    requested = api.post(addon_path(args) + "/maintenance")
    addon, version = requested["operation"]["addon"], requested["maintenance"]["version"]
    how = ("its data nodes are replaced one at a time" if requested["operation"]["kind"] == "maintenance_cluster"
           else "the node stops and restarts on the new image with its data")
    print(f"-----> Moving {addon} onto the current build of {version}: {how}, then the app is restarted ...", flush=True)
    follow_steps(api, requested["operation"]["id"], "maintenance", MAINTENANCE_WAIT_S)
    print(f"-----> {addon} runs the current build of {version}")
    return 0


def database_maintenance_window(api: Api, args) -> int:
    path = addon_path(args) + "/maintenance_window"
    if args.off:
        api.delete(path)
        print("-----> No maintenance window: run database-maintenance when a security update is available")
        return 0
    if args.at is None:
        shown(api.get(path)["window"])
        return 0
    body = {"window_at": args.at}
    zone = local_zone()
    if zone:
        body["local_zone"] = zone
    elif len(args.at.split()) < 3:
        raise CliError(f"cannot tell this machine's time zone (TZ={os.environ.get('TZ', '')!r}, /etc/localtime): "
                       "name one, e.g. --at \"sun 3:00 Europe/Paris\"")
    try:
        shown(api.put(path, body)["window"])
    except ApiError as e:
        if (e.body.get("error") or {}).get("field") == "window_at":
            raise CliError("--at: " + str(e).removeprefix("field 'window_at': ")) from None
        raise
    return 0


def shown(window: dict | None) -> None:
    if window is None:
        print("-----> No maintenance window: run database-maintenance when a security update is available")
        return
    print(f"-----> Maintenance window: {window['description']}")
    print(f"{INDENT}Next opening: {window['next_opening']}")
