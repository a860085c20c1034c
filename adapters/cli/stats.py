"""`stats`: the reference's dashboard figures as two tables — "Container Stats" (CPU; memory current,
highest since the node's restart and free; swap; the size on disk) and "Database Stats" (the data
nodes' INFO figures; a Business replica's role and lag)."""

from __future__ import annotations

from adapters.cli.backups import addon_path, human_size
from adapters.cli.client import Api
from adapters.cli.tables import table

MIB = 1024 * 1024


def mib(size: int | None) -> str:
    """Memory in binary units, as the plans name it (a 256 MiB plan's container may hold 320 MiB)."""
    return "-" if size is None else f"{size / MIB:.1f} MiB"


def stats(api: Api, args) -> int:
    current = api.get(addon_path(args) + "/stats")
    nodes = current["nodes"]
    print(f"Container Stats of {current['addon']} (sampled every {current['interval_s']:g} s)")
    print(table(["NODE", "ROLE", "UP", "CPU", "MEMORY", "HIGHEST", "FREE", "LIMIT", "SWAP", "DISK"],
                [container_row(n) for n in nodes]))
    data = [n for n in nodes if n["database"]]
    if data:
        print("Database Stats")
        print(table(["NODE", "ROLE", "USED MEMORY", "CLIENTS", "OPS/S", "HITS", "MISSES", "EVICTED", "KEYS", "LAG"],
                    [database_row(n) for n in data]))
    return 0


def container_row(node: dict) -> list:
    memory, swap = node["memory"] or {}, node["swap"] or {}
    cpu = "-" if node["cpu_percent"] is None else f"{node['cpu_percent']:.1f} %"
    return [node["node"], node["role"], "yes" if node["up"] else "no", cpu, mib(memory.get("used")),
            mib(memory.get("highest")), mib(memory.get("free")), mib(memory.get("limit")), swap_cell(swap),
            human_size(node["disk_bytes"]) if node["disk_bytes"] is not None else "-"]


def swap_cell(swap: dict) -> str:
    if not swap:
        return "-"
    if not swap["allowed"]:
        return swap.get("note") or "no swap allowed"
    return f"{mib(swap['used'])} (highest {mib(swap['highest'])})"


def database_row(node: dict) -> list:
    db = node["database"]
    keys = ", ".join(f"{name}: {count}" for name, count in db["keys"].items()) or "0"
    if db["role"] == "slave":
        link = "link up" if db["master_link_up"] else "link down"
        lag = f"{db['lag_bytes']} B behind, {link}" if db["lag_bytes"] is not None else link
    else:
        lag = "-"
    role = {"master": "primary", "slave": "replica"}.get(db["role"], db["role"])
    return [node["node"], role, mib(db["used_memory"]), db["connected_clients"], db["instantaneous_ops_per_sec"],
            db["keyspace_hits"], db["keyspace_misses"], db["evicted_keys"], keys, lag]
