"""The verbs that talk to the API; each prints what the reference's CLI would and returns an exit code."""

from __future__ import annotations

import time
import urllib.parse

from adapters.cli.client import Api, CliError
from adapters.cli.tables import table

WAIT_S = 300.0
POLL_S = 0.5


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def need_app(args) -> str:
    if not args.app:
        raise CliError(f"`{args.verb}` needs an app: redis-addons --app APP {args.verb} ...")
    return args.app


def addon_id(row: dict) -> str:
    return row.get("addon") or row.get("name") or "?"


def wait_for(api: Api, operation_id: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        operation = api.get(f"/v1/operations/{quote(operation_id)}")["operation"]
        if operation["status"] != "running":
            return operation
        if time.monotonic() > deadline:
            raise CliError(
                f"operation {operation_id} on {operation['addon']} is still running after {WAIT_S:.0f} s; "
                f"follow it with `redis-addons operations --addon {operation['addon']}`"
            )
        time.sleep(POLL_S)


def check_succeeded(operation: dict, doing: str) -> None:
    if operation["status"] != "succeeded":
        raise CliError(f"{doing} {operation['addon']} failed: {operation.get('error') or 'no detail recorded'}")


def addons_plans(api: Api, args) -> int:
    plans = api.get(f"/v1/addon_providers/{quote(args.provider)}/plans")["plans"]
    rows = [
        [p["id"] + ("" if p.get("available", True) else " (not available)"), f"{p['memory_mib']} MiB",
         p["data_nodes"], "yes" if p["backups"] else "no"]
        for p in plans
    ]
    print(table(["PLAN", "MEMORY", "NODES", "BACKUPS"], rows))
    return 0


def addons_add(api: Api, args) -> int:
    app = need_app(args)
    body = {"addon_provider_id": args.provider, "plan_id": args.plan}
    if args.version:
        body["version"] = args.version
    requested = api.post(f"/v1/apps/{quote(app)}/addons", body)
    operation = wait_for(api, requested["operation"]["id"])
    check_succeeded(operation, "provisioning")
    print(f"-----> Addon {args.provider} has been provisioned")
    print(f"       ID: {operation['addon']}")
    print("       Modified variables: [REDIS_URL SCALINGO_REDIS_URL]")
    print("       Message from addon provider: Database successfully created")
    return 0


def addons(api: Api, args) -> int:
    app = need_app(args)
    rows = api.get(f"/v1/apps/{quote(app)}/addons")["addons"]
    shown = [r for r in rows if args.all or r.get("status") != "removed"]
    cells = [[r.get("provider", "redis").capitalize(), addon_id(r), r.get("plan"), r.get("version"), r.get("status")] for r in shown]
    print(table(["ADDON", "ID", "PLAN", "VERSION", "STATUS"], cells))
    return 0


def addons_remove(api: Api, args) -> int:
    app = need_app(args)
    requested = api.delete(f"/v1/apps/{quote(app)}/addons/{quote(args.addon_id)}")
    operation = wait_for(api, requested["operation"]["id"])
    check_succeeded(operation, "removing")
    print(f"-----> Addon {args.addon_id} has been removed")
    return 0


def env(api: Api, args) -> int:
    app = need_app(args)
    for variable in api.get(f"/v1/apps/{quote(app)}/variables")["variables"]:
        print(f"{variable['name']}={variable['value']}")
    return 0


def step_text(step: dict) -> str:
    mark = {"succeeded": "ok", "failed": "FAILED"}.get(step["status"], step["status"])
    tries = f" x{step['attempts']}" if step.get("attempts", 0) > 1 else ""
    return f"{step['name']}:{mark}{tries}"


def outcome_text(operation: dict) -> str:
    text = operation["status"]
    if operation.get("error"):
        text += f": {operation['error']}"
    if operation.get("compensation"):
        text += f" (undone: {operation['compensation']})"
    return text


def operations(api: Api, args) -> int:
    listed = api.get("/v1/operations", addon=args.addon)["operations"]
    rows = [
        [o["id"][:8], o.get("started_at", "")[:19].replace("T", " "), o["kind"], o["addon"],
         " ".join(step_text(s) for s in o.get("steps", [])), outcome_text(o)]
        for o in listed
    ]
    print(table(["ID", "STARTED (UTC)", "KIND", "ADDON", "STEPS", "OUTCOME"], rows))
    return 0


def replay(api: Api, args) -> int:
    result = api.post("/v1/admin/replay")
    counts = ", ".join(f"{table_name} {n}" for table_name, n in sorted(result.get("rows", {}).items()))
    if result["matches"]:
        print(f"-----> Read models match the event log (position {result['position']}; rows: {counts})")
        return 0
    print(f"-----> Read models DIFFER from the event log at position {result['position']}: "
          f"{', '.join(result.get('differences') or ['tracking position'])}")
    return 1
