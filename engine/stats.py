"""A node's stats: what the reference's dashboard shows ("Container Stats", "Database Stats"), measured.

Stats are measurements, not decisions: they never go into the event store, and `replay` does not
rebuild them (DESIGN §6). The sampler (engine/stats_sampler.py) makes a NodeStats of each live node
every interval; the history port (engine/ports.py, StatsHistory) keeps them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)
