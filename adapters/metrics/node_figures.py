"""Each node's last stats sample as metric families, read at scrape time.

The Redis figures carry redis_exporter's names and label forms (`redis_db_keys{db="db0"}`, `role` as
INFO says it: master / slave), so Grafana's Redis dashboards work on them; every family is labelled by
app, addon and node as well. Container and disk figures, which redis_exporter does not have, are under
`redis_addons_` with `component` (data, sentinel, entry) in place of the replication role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from engine.stats import NodeStats

NODE = ("app", "addon", "node")
REDIS = NODE + ("role",)
COMPONENT = NODE + ("component",)

# name -> (help, the figure in DatabaseFigures); counters lose their `_total` in the family's name
# (prometheus_client adds it back in the exposition).
REDIS_GAUGES = {
    "redis_memory_used_bytes": ("Memory the server uses (INFO used_memory)", "used_memory"),
    "redis_memory_max_bytes": ("The server's maxmemory", "maxmemory"),
    "redis_connected_clients": ("Clients connected", "connected_clients"),
    "redis_instantaneous_ops_per_sec": ("Commands per second, as the server measures it", "instantaneous_ops_per_sec"),
    "redis_connected_slaves": ("Replicas connected to this node", "connected_slaves"),
    "redis_master_repl_offset": ("The replication offset (INFO master_repl_offset)", "repl_offset"),
    "redis_uptime_in_seconds": ("Seconds since the server started", "uptime_s"),
}
REDIS_COUNTERS = {
    "redis_commands_processed": ("Commands processed since the server started", "total_commands_processed"),
    "redis_keyspace_hits": ("Key lookups that found the key", "keyspace_hits"),
    "redis_keyspace_misses": ("Key lookups that did not", "keyspace_misses"),
    "redis_evicted_keys": ("Keys evicted under maxmemory", "evicted_keys"),
}


def node_families(samples: Iterable[NodeStats]) -> list[Metric]:
    samples = list(samples)
    families: dict[str, Metric] = {}

    def gauge(name: str, help_: str, labels=REDIS) -> GaugeMetricFamily:
        return families.setdefault(name, GaugeMetricFamily(name, help_, labels=labels))

    def counter(name: str, help_: str) -> CounterMetricFamily:
        return families.setdefault(name, CounterMetricFamily(name, help_, labels=REDIS))

    gauge("redis_up", "1 when the server answered the last sample")  # first: present even with no data node
    for s in samples:
        _container(s, gauge)
        if s.role != "data":
            continue
        db = s.database
        labels = [s.app, s.addon, s.node, db.role if db else ""]
        gauge("redis_up", "").add_metric(labels, 1 if s.up and db else 0)
        if db is None:
            continue
        for name, (help_, figure) in REDIS_GAUGES.items():
            gauge(name, help_).add_metric(labels, getattr(db, figure))
        for name, (help_, figure) in REDIS_COUNTERS.items():
            counter(name, help_).add_metric(labels, getattr(db, figure))
        keys = gauge("redis_db_keys", "Keys in each database", REDIS + ("db",))
        for number, n in sorted(db.keys.items()):
            keys.add_metric(labels + [f"db{number}"], n)
        gauge("redis_instance_info", "Facts about the server, as labels", REDIS + ("run_id",)).add_metric(
            labels + [db.run_id], 1)
        if db.master_link_up is not None:
            gauge("redis_master_link_up", "1 when a replica's link to its primary is up").add_metric(
                labels, 1 if db.master_link_up else 0)
        if db.lag_bytes is not None:
            gauge("redis_addons_replica_lag_bytes", "How far a replica's offset is behind its primary's").add_metric(
                labels, db.lag_bytes)
    return list(families.values())


def _container(s: NodeStats, gauge: Callable[..., GaugeMetricFamily]) -> None:
    labels = [s.app, s.addon, s.node, s.role]

    def put(name: str, help_: str, value) -> None:
        if value is not None:
            gauge(name, help_, COMPONENT).add_metric(labels, value)

    put("redis_addons_node_up", "1 when the node's container runs (and a data node's server answered)", int(s.up))
    put("redis_addons_node_sampled_at_seconds", "When the node was last sampled (Unix time)", s.at)
    put("redis_addons_disk_bytes", "The node's data on disk: RDB and AOF files as stored", s.disk_bytes)
    put("redis_addons_memory_highest_bytes", "The highest container memory use since the node last started",
        s.memory_highest_bytes)
    c = s.container
    if c is None:
        return
    put("redis_addons_cpu_percent", "CPU use, as `docker stats` computes it (100 = one core)", c.cpu_percent)
    put("redis_addons_memory_used_bytes", "Container memory use less the inactive file cache", c.memory_used_bytes)
    put("redis_addons_memory_limit_bytes", "The container's memory limit", c.memory_limit_bytes)
    put("redis_addons_swap_allowed", "1 when the node may swap (0: its swap limit equals its memory limit)",
        int(c.swap_allowed))
    put("redis_addons_swap_used_bytes", "Swap the container uses (only where swap is allowed)", c.swap_used_bytes)
