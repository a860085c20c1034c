"""A Business addon as recorded when it is asked for: the Addon (what the app sees: the entry
address both HAProxy bind) and its Cluster of seven placed nodes."""

from __future__ import annotations

from dataclasses import replace

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.catalog import Plan
from domain.cluster import Cluster, node_record
from domain.operation import Operation
from domain.placement import HAPROXY_MEMORY_MIB, SENTINEL_MEMORY_MIB, Placement, cluster_requests

MEMORY = {"sentinel": SENTINEL_MEMORY_MIB, "proxy": HAPROXY_MEMORY_MIB}
TLS_ROLES = ("data", "sentinel")  # their one port serves TLS only; HAProxy's entry has a port for each


def business_requests(plan: Plan, tls: bool = False):
    """The nodes to place. With `tls` (a build that has it), the first HAProxy's place holds a second
    port: the entry's TLS port. The data nodes and Sentinels need no second port: only HAProxy and
    the engine reach them, both over TLS."""
    requests = cluster_requests(plan.data_nodes, plan.sentinels, plan.haproxy, plan.memory_mib, tls=False)
    entry = next(i for i, r in enumerate(requests) if r.role == "proxy")
    return [replace(r, tls=tls) if i == entry else r for i, r in enumerate(requests)]


def business_addon(name: str, app: str, plan: Plan, version: str, placed: list[Placement],
                   operation: Operation, tls: bool = False) -> tuple[Addon, Cluster]:
    requests = business_requests(plan, tls)
    cluster = Cluster(addon=name, app=app)
    records = []
    for i, (request, where) in enumerate(zip(requests, placed)):
        container = f"redis-addons-{name}-{operation.id.hex[:8]}-{request.role}{i}"
        record = node_record(request.role, where.host, where.address, where.port, container, f"{container}-data",
                             MEMORY.get(request.role, plan.memory_mib), version,
                             tls_port=where.port if tls and request.role in TLS_ROLES else None)
        records.append({**record, "placed_by": str(operation.id)})
        cluster.place_node(records[-1])
    primary = records[0]
    entry = next(i for i, r in enumerate(records) if r["role"] == "proxy")  # every HAProxy binds the first one's ports
    tls_port = placed[entry].tls_port if tls else None
    cluster.reserve_entry(host=records[entry]["host"], address=records[entry]["address"], port=records[entry]["port"],
                          **({"tls_port": tls_port} if tls_port else {}))
    addon = Addon(name=name, app=app, plan=plan.id, memory_mib=plan.memory_mib, redis_version=version,
                  host=primary["host"], address=records[entry]["address"], port=records[entry]["port"],
                  container=primary["container"], volume=primary["volume"], operation_id=operation.id,
                  settings=DEFAULT_SETTINGS, tls_port=tls_port)
    return addon, cluster


def replacement_node(addon: Addon, cluster: Cluster, lost: dict, where: Placement, operation: Operation,
                     memory_mib: int | None = None, version: str | None = None) -> dict:
    """The record of the node that takes `lost`'s place, placed by `operation` (a node replacement, or a
    plan change: then with the new plan's `memory_mib`; or an upgrade: then on the new `version`'s build)."""
    container = f"redis-addons-{addon.name}-{operation.id.hex[:8]}-{lost['role']}{len(cluster.nodes)}"
    # It serves TLS as the node it replaces did (on its one port), whatever the cluster's TLS setting is.
    tls_port = where.port if lost.get("tls_port") is not None and lost.get("tls_port") == lost["port"] else None
    record = node_record(lost["role"], where.host, where.address, where.port, container, f"{container}-data",
                         memory_mib or lost["memory_mib"], version or lost["version"], tls_port=tls_port)
    return {**record, "placed_by": str(operation.id), "replaces": lost["id"]}
