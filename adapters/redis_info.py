"""A data node's figures from its server's INFO (RedisAdmin delegates here)."""

from __future__ import annotations

from engine.stats import DatabaseFigures


def database_figures(info: dict) -> DatabaseFigures:
    """From INFO as redis-py parses it (numbers as ints, `db0` as a dict); a field an older server does
    not report counts 0."""

    def number(name: str) -> int:
        value = info.get(name, 0)
        return int(value) if isinstance(value, (int, float)) or str(value).lstrip("-").isdigit() else 0

    keys = {int(name[2:]): int(value.get("keys", 0)) for name, value in info.items()
            if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict)}
    replica = info.get("role") == "slave"
    return DatabaseFigures(
        used_memory=number("used_memory"),
        maxmemory=number("maxmemory"),
        connected_clients=number("connected_clients"),
        total_commands_processed=number("total_commands_processed"),
        instantaneous_ops_per_sec=number("instantaneous_ops_per_sec"),
        keyspace_hits=number("keyspace_hits"),
        keyspace_misses=number("keyspace_misses"),
        evicted_keys=number("evicted_keys"),
        keys=dict(sorted(keys.items())),
        role=str(info.get("role", "")),
        connected_slaves=number("connected_slaves"),
        master_link_up=(info.get("master_link_status") == "up") if replica else None,
        # A replica's master_repl_offset is the primary's stream it has processed: its own offset.
        repl_offset=number("master_repl_offset"),
        uptime_s=number("uptime_in_seconds"),
        run_id=str(info.get("run_id", "")),
    )


async def read_figures(client) -> DatabaseFigures:
    # INFO with no section: the default sections (server, clients, memory, stats, replication, keyspace...)
    return database_figures(await client.info())
