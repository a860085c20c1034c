"""`nodes`: an addon's cluster as a table, one row per node."""

from __future__ import annotations

from adapters.cli.backups import addon_path
from adapters.cli.client import Api
from adapters.cli.tables import table


def nodes(api: Api, args) -> int:
    """Retired nodes (a plan change's old one) only with --all."""
    shown = [n for n in api.get(addon_path(args) + "/nodes")["nodes"] if args.all or n["state"] != "retired"]
    cells = [[n["id"], n["role"] + (" (primary)" if n["is_primary"] else ""), n["host"], n["address"],
              ", ".join(str(p) for p in (n["port"], n["tls_port"]) if p), n["version"],
              n["state"] + (f": {n['reason']}" if n.get("reason") and n["state"] == "down" else ""),
              replication(n)] for n in shown]
    print(table(["NODE", "ROLE", "HOST", "ADDRESS", "PORTS", "VERSION", "STATE", "REPLICATION"], cells))
    return 0


def replication(node: dict) -> str:
    """The primary's offset; a replica's offset, bytes behind and seconds since it last answered."""
    if node.get("offset") is None:
        return ""
    if node["is_primary"]:
        return f"offset {node['offset']}"
    return f"offset {node['offset']}, {node['behind_bytes']} B behind, lag {node['lag_s']} s"
