"""`database-version`: the engine version an addon runs and the upgrades available to it (reference,
"Database Upgrade": the dashboard's Database Version block); `database-upgrade [VERSION]`: take one (the
next allowed step by default). `--addon` is `redis` (the app's only Redis addon) or an addon ID.

A step that says what the user must know before taking it (Step.note: the Redis 8 branch, whose RDB
format 12 no Valkey reads) is shown and confirmed before anything starts: asked on the terminal, or
`--yes`; without a terminal and without `--yes` the upgrade is refused, nothing requested."""

from __future__ import annotations

import sys

from adapters.cli.backups import addon_path
from adapters.cli.client import Api, CliError
from adapters.cli.settings import WARNING, capitalized
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import PLAN_CHANGE_WAIT_S, follow_steps

UPGRADE_WAIT_S = PLAN_CHANGE_WAIT_S  # the data files are saved and copied, as for a plan change


def yes_no(value) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def database_version(api: Api, args) -> int:
    shown = api.get(addon_path(args) + "/version")["version"]
    engine = f"{shown['engine'].capitalize()} " if shown["engine"] else ""  # none: gone from the catalogue
    print(f"-----> {shown['addon']} runs {engine}{shown['version']}")
    print(f"{INDENT}TLS:       {yes_no(shown['tls'])}" + (" (forced)" if shown["force_tls"] else ""))
    print(f"{INDENT}Retired:   {yes_no(shown['retired'])}")
    if len(shown["nodes"]) == 1 and "build" in shown["nodes"][0]:
        print(f"{INDENT}Build:     {shown['nodes'][0]['build']}")
    if len(shown["nodes"]) > 1:  # a Business addon: each data node's build (they differ during an upgrade)
        print(f"{INDENT}Data nodes:")
        for node in shown["nodes"]:
            print(f"{INDENT}  {node['id']}  {node['version']}" + (f", build {node['build']}" if "build" in node else "")
                  + (" (primary)" if node["is_primary"] else ""))
    if shown["upgrades"]:
        print(f"{INDENT}Upgrades available, the next one first:")
        print(table(["VERSION", "ENGINE", "KIND", "TLS"],
                    [[u["version"], u["engine"], u["kind"], yes_no(u["tls"])] for u in shown["upgrades"]]))
        for upgrade in shown["upgrades"]:
            if upgrade["note"]:
                print(f"{WARNING}{upgrade['version']}: {upgrade['note']}")
    if shown["advice"]:
        print(f"{WARNING}{capitalized(shown['advice'])}")
    if shown.get("maintenance"):  # a security update of its build
        print(f"{WARNING}{capitalized(shown['maintenance'])}")
    return 0


def upgrade_arguments(verb) -> None:
    verb.add_argument("version", nargs="?",
                      help="the version to go to, as `database-version` lists them (default: the next one)")
    verb.add_argument("-y", "--yes", action="store_true",
                      help="take a step that cannot be undone (Redis 8: never Valkey again) without being asked")


def database_upgrade(api: Api, args) -> int:
    step = chosen_step(api, args)
    if step is not None and step["note"]:
        confirm(step, args)
    requested = api.post(addon_path(args) + "/upgrade", {"version": args.version} if args.version else {})
    asked, addon = requested["upgrade"], requested["operation"]["addon"]
    to = f"{asked['engine'].capitalize()} {asked['to']}"
    if asked["note"] and (step is None or step["version"] != asked["to"]):  # not the step confirmed
        print(f"{WARNING}{asked['note']}")
    print(f"-----> Upgrading {addon} from {asked['from']} to {to} ({asked['kind']}): the node stops and restarts on "
          "the new build with its data, then the app is restarted ...", flush=True)
    follow_steps(api, requested["operation"]["id"], "upgrade", UPGRADE_WAIT_S)
    print(f"-----> {addon} runs {to}")
    return 0



def chosen_step(api: Api, args) -> dict | None:
    """The step `database-upgrade` is about to ask for, as `database-version` offers it; None when it is
    not offered (the API then refuses it in the rule's words)."""
    offered = api.get(addon_path(args) + "/version")["version"]["upgrades"]
    if not args.version:
        return offered[0] if offered else None
    return next((u for u in offered if u["version"] == args.version), None)


def confirm(step: dict, args, stdin=None) -> None:
    """Show the step's note and have the user confirm it (or --yes); raise, requesting nothing, otherwise."""
    stdin = stdin or sys.stdin
    target = f"{step['engine'].capitalize()} {step['version']}"
    print(f"{WARNING}{step['note']}")
    if args.yes:
        return
    if not stdin.isatty():
        raise CliError(f"the upgrade to {target} cannot be undone ({step['note']}): run it again with --yes to "
                       "confirm (there is no terminal to ask on); nothing was changed")
    print(f"Upgrade to {target}? Type 'yes' to confirm: ", end="", flush=True)
    if stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError(f"the upgrade to {target} was not confirmed: nothing was changed")
