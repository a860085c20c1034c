"""A Business addon as recorded when it is asked for: the Addon (what the app sees: the entry
address both HAProxy bind) and its Cluster of seven placed nodes."""

from __future__ import annotations

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.catalog import Plan
from domain.cluster import Cluster, node_record
from domain.operation import Operation
from domain.placement import HAPROXY_MEMORY_MIB, SENTINEL_MEMORY_MIB, Placement, cluster_requests

MEMORY = {"sentinel": SENTINEL_MEMORY_MIB, "proxy": HAPROXY_MEMORY_MIB}


def business_requests(plan: Plan):
    # TLS is not served by Business clusters yet: the entry would need it too.
    return cluster_requests(plan.data_nodes, plan.sentinels, plan.haproxy, plan.memory_mib, tls=False)


def business_addon(name: str, app: str, plan: Plan, version: str, placed: list[Placement],
                   operation: Operation) -> tuple[Addon, Cluster]:
    requests = business_requests(plan)
    cluster = Cluster(addon=name, app=app)
    records = []
    for i, (request, where) in enumerate(zip(requests, placed)):
        container = f"redis-addons-{name}-{operation.id.hex[:8]}-{request.role}{i}"
        record = node_record(request.role, where.host, where.address, where.port, container, f"{container}-data",
                             MEMORY.get(request.role, plan.memory_mib), version)
        records.append({**record, "placed_by": str(operation.id)})
        cluster.place_node(records[-1])
    primary = records[0]
    entry = next(r for r in records if r["role"] == "proxy")  # every HAProxy binds the first one's address and port
    cluster.reserve_entry(host=entry["host"], address=entry["address"], port=entry["port"])
    addon = Addon(name=name, app=app, plan=plan.id, memory_mib=plan.memory_mib, redis_version=version,
                  host=primary["host"], address=entry["address"], port=entry["port"], container=primary["container"],
                  volume=primary["volume"], operation_id=operation.id, settings=DEFAULT_SETTINGS)
    return addon, cluster


def replacement_node(addon: Addon, cluster: Cluster, lost: dict, where: Placement, operation: Operation,
                     memory_mib: int | None = None) -> dict:
    """The record of the node that takes `lost`'s place, placed by `operation` (a node replacement, or a
    plan change: then with the new plan's `memory_mib`)."""
    container = f"redis-addons-{addon.name}-{operation.id.hex[:8]}-{lost['role']}{len(cluster.nodes)}"
    record = node_record(lost["role"], where.host, where.address, where.port, container, f"{container}-data",
                         memory_mib or lost["memory_mib"], lost["version"])
    return {**record, "placed_by": str(operation.id), "replaces": lost["id"]}
