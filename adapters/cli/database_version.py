"""`database-version`: the engine version an addon runs and the upgrades available to it (reference,
"Database Upgrade": the dashboard's Database Version block). `--addon` is `redis` (the app's only Redis
addon) or an addon ID. Taking an upgrade is not a verb yet."""

from __future__ import annotations

from adapters.cli.backups import addon_path
from adapters.cli.client import Api
from adapters.cli.settings import WARNING, capitalized
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT


def yes_no(value) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def database_version(api: Api, args) -> int:
    shown = api.get(addon_path(args) + "/version")["version"]
    engine = f"{shown['engine'].capitalize()} " if shown["engine"] else ""  # none: gone from the catalogue
    print(f"-----> {shown['addon']} runs {engine}{shown['version']}")
    print(f"{INDENT}TLS:       {yes_no(shown['tls'])}" + (" (forced)" if shown["force_tls"] else ""))
    print(f"{INDENT}Retired:   {yes_no(shown['retired'])}")
    if len(shown["nodes"]) > 1:  # a Business addon: each data node's build (they differ during an upgrade)
        print(f"{INDENT}Data nodes:")
        for node in shown["nodes"]:
            print(f"{INDENT}  {node['id']}  {node['version']}" + (" (primary)" if node["is_primary"] else ""))
    if shown["upgrades"]:
        print(f"{INDENT}Upgrades available, the next one first:")
        print(table(["VERSION", "ENGINE", "KIND", "TLS"],
                    [[u["version"], u["engine"], u["kind"], yes_no(u["tls"])] for u in shown["upgrades"]]))
        for upgrade in shown["upgrades"]:
            if upgrade["note"]:
                print(f"{WARNING}{upgrade['version']}: {upgrade['note']}")
    if shown["advice"]:
        print(f"{WARNING}{capitalized(shown['advice'])}")
    return 0
