"""A node's stats: what the reference's dashboard shows ("Container Stats", "Database Stats"), measured.

Stats are measurements, not decisions: they never go into the event store, and `replay` does not
rebuild them (DESIGN §6). The sampler (engine/stats_sampler.py) makes a NodeStats of each live node
every interval; the history port (engine/ports.py, StatsHistory) keeps them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ContainerFigures:
    """From the Docker engine's stats API and the container's settings."""

    cpu_percent: float | None  # as `docker stats` computes it; None on the first read of a container
    memory_used_bytes: int  # usage less the inactive file cache, as `docker stats`
    memory_limit_bytes: int
    swap_allowed: bool  # False: the swap limit equals the memory limit, the node may not swap
    swap_used_bytes: int | None = None  # only where swap is allowed and the host tells it


@dataclass(frozen=True)
class DatabaseFigures:
    """From the server's INFO, for data nodes; names as INFO says them."""

    used_memory: int
    maxmemory: int
    connected_clients: int
    total_commands_processed: int
    instantaneous_ops_per_sec: int
    keyspace_hits: int
    keyspace_misses: int
    evicted_keys: int
    keys: dict[int, int]  # database number -> keys
    role: str  # master / slave
    connected_slaves: int
    master_link_up: bool | None  # a replica's link to its primary; None on a primary
    repl_offset: int
    lag_bytes: int | None = None  # a replica's offset behind its primary's; None on a primary
    uptime_s: int = 0
    run_id: str = ""  # changes when the server restarts


@dataclass(frozen=True)
class NodeStats:
    """One sample of one node."""

    app: str
    addon: str
    node: str  # the node's id in its Cluster
    role: str  # data, sentinel, entry
    host: str
    at: float  # seconds since the epoch, UTC
    up: bool  # the container runs and (data nodes) the server answered
    container: ContainerFigures | None
    database: DatabaseFigures | None = None
    disk_bytes: int | None = None  # RDB + AOF files as stored (data nodes)
    # "the maximum memory recorded since database restarted": the sampler's highest reading since the
    # node's last (re)start, reset when it restarts.
    memory_highest_bytes: int | None = None
    swap_highest_bytes: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# What the history keeps of each sample (adapters/stats_history.py): rates are averaged when points are
# merged, sizes take their maximum.
AVERAGED = ("cpu_percent", "ops_per_sec")
HISTORY_FIELDS = ("cpu_percent", "memory_used", "memory_highest", "swap_used", "disk_bytes", "used_memory",
                  "ops_per_sec", "connected_clients")


def history_point(sample: NodeStats) -> dict:
    container, database = sample.container, sample.database
    return {
        "at": sample.at,
        "cpu_percent": container.cpu_percent if container else None,
        "memory_used": container.memory_used_bytes if container else None,
        "memory_highest": sample.memory_highest_bytes,
        "swap_used": container.swap_used_bytes if container else None,
        "disk_bytes": sample.disk_bytes,
        "used_memory": database.used_memory if database else None,
        "ops_per_sec": database.instantaneous_ops_per_sec if database else None,
        "connected_clients": database.connected_clients if database else None,
    }


def merged(points: list[dict], at: float) -> dict:
    """Points of one step as one: rates averaged, sizes at their maximum; a figure no point has stays None."""
    result = {"at": at}
    for name in HISTORY_FIELDS:
        values = [p[name] for p in points if p.get(name) is not None]
        if not values:
            result[name] = None
        elif name in AVERAGED:
            result[name] = round(sum(values) / len(values), 2)
        else:
            result[name] = max(values)
    return result
