"""The verbs that talk to the API; each prints what the reference's CLI would and returns an exit code."""

from __future__ import annotations

import sys
import time
import urllib.parse
import uuid

from adapters.cli.client import Api, CliError
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT, StepPrinter, failed_step, timeline

WAIT_S = 300.0
POLL_S = 0.5
PLAN_CHANGE_WAIT_S = 900.0  # the data files are copied to the new host
STEP_POLL_S = 0.2  # steps are shown as they end

# As the reference lists them, then the rediss:// URLs of an addon serving TLS (names only: the
# values hold the password).
VARIABLE_ORDER = ["REDIS_URL", "SCALINGO_REDIS_URL", "REDIS_TLS_URL", "SCALINGO_REDIS_TLS_URL"]


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def need_app(args) -> str:
    if not args.app:
        raise CliError(f"`{args.verb}` needs an app: redis-addons --app APP {args.verb} ...")
    return args.app


def addon_id(row: dict) -> str:
    return row.get("addon") or row.get("name") or "?"


def wait_for(api: Api, operation_id: str, on_update=None, wait_s: float = WAIT_S, poll_s: float = POLL_S) -> dict:
    """Poll the operation until it has finished; `on_update` sees every copy fetched."""
    deadline = time.monotonic() + wait_s
    while True:
        operation = api.get(f"/v1/operations/{quote(operation_id)}")["operation"]
        if on_update:
            on_update(operation)
        if operation["status"] != "running":
            return operation
        if time.monotonic() > deadline:
            raise CliError(
                f"operation {operation_id} on {operation['addon']} is still running after {wait_s:.0f} s; "
                f"follow it with `redis-addons operations --id {operation_id}`"
            )
        time.sleep(poll_s)


def follow_steps(api: Api, operation_id: str, what: str, wait_s: float) -> dict:
    """Print each step of the operation as it ends; return it once succeeded, else say where it failed."""
    try:
        operation = wait_for(api, operation_id, on_update=StepPrinter(lambda line: print(line, flush=True)),
                             wait_s=wait_s, poll_s=STEP_POLL_S)
    except KeyboardInterrupt:
        print(f"the {what} goes on in the background: follow it with `redis-addons operations --id {operation_id}`",
              file=sys.stderr)
        raise
    if operation["status"] != "succeeded":
        step = failed_step(operation)
        where = f" at {step['name']}: {step.get('detail') or 'no detail recorded'}" if step else f": {operation.get('error')}"
        then = f"\n{INDENT}{operation['compensation']}" if operation.get("compensation") else ""
        raise CliError(f"{what} failed{where}{then}")
    return operation


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


def versions(api: Api, args) -> int:
    listed = api.get(f"/v1/addon_providers/{quote(args.provider)}/versions")["versions"]
    rows = [
        [v["version"] + (" (default)" if v["default"] else "") + (" (retired)" if v.get("retired") else ""),
         v["engine"], "yes" if v["tls"] else "no", str(v.get("rdb_format", "")), v["source"], h["host"],
         package_text(h), (h.get("built_at") or "").replace("T", " ").rstrip("Z")]
        for v in listed for h in v["hosts"]
    ]
    print(table(["VERSION", "ENGINE", "TLS", "RDB", "SOURCE", "HOST", "PACKAGE VERSION", "BUILT (UTC)"], rows))
    return 0


def package_text(image: dict) -> str:
    """"5:7.0.15-1~deb12u10", the package version recorded on the host's image, or why there is none."""
    package = image.get("package")
    return package["version"] if package else f"({image['problem']})"


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
    serves_tls = api.get(f"/v1/apps/{quote(app)}/addons/{quote(operation['addon'])}")["addon"].get("tls_port")
    print(f"       Modified variables: [{' '.join(VARIABLE_ORDER if serves_tls else VARIABLE_ORDER[:2])}]")
    print("       Message from addon provider: Database successfully created")
    return 0


def addons(api: Api, args) -> int:
    app = need_app(args)
    rows = api.get(f"/v1/apps/{quote(app)}/addons")["addons"]
    shown = [r for r in rows if args.all or r.get("status") != "removed"]
    cells = [[r.get("provider", "redis").capitalize(), addon_id(r), r.get("plan"), r.get("version"), r.get("status")] for r in shown]
    print(table(["ADDON", "ID", "PLAN", "VERSION", "STATUS"], cells))
    return 0


def addons_upgrade(api: Api, args) -> int:
    """Reference, "Changing Plans": the same verb upgrades and downgrades."""
    app = need_app(args)
    path = f"/v1/apps/{quote(app)}/addons/{quote(args.addon_id)}"
    requested = api.patch(path, {"plan_id": args.plan})
    operation_id = requested["operation"]["id"]
    way = direction(api, requested["addon"], args.plan)
    print(f"-----> Addon {args.addon_id} is being {way} to {args.plan} ...", flush=True)
    follow_steps(api, operation_id, "plan change", PLAN_CHANGE_WAIT_S)
    row = api.get(path)["addon"]
    print(f"-----> Addon {args.addon_id} is now on {row.get('plan', args.plan)} ({row.get('host', '?')})")
    return 0


def direction(api: Api, row: dict, plan: str) -> str:
    """"upgraded" or "downgraded", from the plans' memory (the addon row still has the old plan)."""
    try:
        plans = api.get(f"/v1/addon_providers/{quote(row.get('provider') or 'redis')}/plans")["plans"]
        memory = {p["id"]: p["memory_mib"] for p in plans}
        return "downgraded" if memory[plan] < memory[row["plan"]] else "upgraded"
    except (CliError, KeyError):
        return "upgraded"


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
        # "then", not "undone": past a plan change's publish step, the addon stays on its new plan
        text += f" (then: {operation['compensation']})"
    return text


def operations(api: Api, args) -> int:
    if args.operation_id:
        print(timeline(api.get(f"/v1/operations/{quote(find_operation(api, args))}")["operation"]))
        return 0
    listed = api.get("/v1/operations", addon=args.addon)["operations"]
    rows = [
        [o["id"][:8], o.get("started_at", "")[:19].replace("T", " "), o["kind"], o["addon"],
         " ".join(step_text(s) for s in o.get("steps", [])), outcome_text(o)]
        for o in listed
    ]
    print(table(["ID", "STARTED (UTC)", "KIND", "ADDON", "STEPS", "OUTCOME"], rows))
    return 0


def operations_retry(api: Api, args) -> int:
    operation = api.post(f"/v1/operations/{quote(find_operation(api, args))}/retry")["operation"]
    print(f"-----> Operation {operation['id']} ({operation['kind']} of {operation['addon']}) is tried again: "
          f"follow it with `redis-addons operations --id {operation['id'][:8]}`")
    return 0


def find_operation(api: Api, args) -> str:
    """A full operation ID, or the start of one (the `operations` table shows 8 characters)."""
    given = args.operation_id.strip().lower()
    try:
        return str(uuid.UUID(given))
    except ValueError:
        pass
    found = [o["id"] for o in api.get("/v1/operations", addon=args.addon)["operations"] if o["id"].startswith(given)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise CliError(f"no operation has an ID starting with {given!r}; see `redis-addons operations`")
    raise CliError(f"{len(found)} operations have an ID starting with {given!r}: give more of it")


def apps_register(api: Api, args) -> int:
    name = args.name or args.app
    if not name:
        raise CliError("`apps-register` needs an app: redis-addons apps-register APP --restart docker|hook|none ...")
    if args.name and args.app and args.name != args.app:
        raise CliError(f"two app names given: {args.name!r} and --app {args.app!r}")
    kind = args.restart or ("docker" if args.label else "hook" if args.url else "none")
    restart = {"kind": kind, **({"label": args.label} if args.label else {}), **({"url": args.url} if args.url else {})}
    registered = api.post("/v1/apps", {"name": name, "restart": restart})["app"]
    print(f"-----> App {registered['name']} will {restart_text(registered['restart'])}")
    return 0


def restart_text(method: dict) -> str:
    if method.get("kind") == "docker":
        return (f"be restarted by recreating its Docker containers labelled {method['label']} (on every host) "
                "with the new environment")
    if method.get("kind") == "hook":
        return f"be restarted by a POST of its new environment to {method['url']}"
    return "not be restarted by redis-addons (restart method: none): restart it yourself when an addon changes plan"


def apps_info(api: Api, args) -> int:
    app = need_app(args)
    registered = api.get(f"/v1/apps/{quote(app)}")["app"]
    rows = [r for r in api.get(f"/v1/apps/{quote(app)}/addons")["addons"] if r.get("status") != "removed"]
    addon_list = ", ".join(f"{addon_id(r)} ({r.get('plan')}, {r.get('status')})" for r in rows) or "none"
    print(f"-----> App {registered['name']}")
    print(f"{INDENT}Restart: {restart_summary(registered['restart'])}")
    print(f"{INDENT}Addons:  {addon_list}")
    return 0


def restart_summary(method: dict) -> str:
    if method.get("kind") == "docker":
        return f"docker (containers labelled {method['label']}, recreated with the new environment)"
    if method.get("kind") == "hook":
        return f"hook (POST to {method['url']})"
    return "none (the app is not restarted by redis-addons)"


def replay(api: Api, args) -> int:
    result = api.post("/v1/admin/replay")
    counts = ", ".join(f"{table_name} {n}" for table_name, n in sorted(result.get("rows", {}).items()))
    if result["matches"]:
        print(f"-----> Read models match the event log (position {result['position']}; rows: {counts})")
        return 0
    print(f"-----> Read models DIFFER from the event log at position {result['position']}: "
          f"{', '.join(result.get('differences') or ['tracking position'])}")
    return 1
