"""The node records of an addon's Cluster: where the engine's commands and sagas find the nodes
they act on (the Addon keeps what the app sees), and keep them in step with the Addon's changes
(saved in the same transaction)."""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.cluster import Cluster, node_record
from domain.errors import AddonNotRunning
from domain.operation import Operation
from engine.ports import EffectError
from engine.store import AggregateNotFoundError, EventLog


def data_node(addon: Addon, node: dict, placed_by: UUID | None = None) -> dict:
    """The record of a data node of `addon` at `node` (a host, address, ports, container, volume),
    placed by operation `placed_by`."""
    record = node_record("data", node["host"], node["address"], node["port"], node["container"], node["volume"],
                         node.get("memory_mib", addon.memory_mib), node.get("redis_version", addon.redis_version),
                         node.get("tls_port"))
    return {**record, "placed_by": str(placed_by)} if placed_by else record


def new_cluster(addon: Addon, operation_id: UUID) -> Cluster:
    """A starter or sandbox addon's cluster: one data node, placed where the addon was."""
    cluster = Cluster(addon=addon.name, app=addon.app)
    cluster.place_node(data_node(addon, addon.previous_node, operation_id))
    return cluster


def serving_node(cluster: Cluster) -> dict:
    """The data node the app's data is on: the primary."""
    if cluster.primary_node is None:
        raise EffectError(f"addon {cluster.addon} has no primary data node recorded")
    return cluster.primary_node


async def serving_node_of(events: EventLog, addon: str) -> dict:
    return serving_node(await cluster_of(events, addon))


def node_placed_by(cluster: Cluster, operation: Operation) -> dict:
    """The data node `operation` placed (a provisioning's node, a plan change's or restore's new one)."""
    mine = [n for n in cluster.live_nodes if n.get("placed_by") == str(operation.id)]
    if mine:
        return mine[0]
    # A cluster adopted from an older release's events does not record who placed a node: then it is
    # the placed node beside the primary, or, for a provisioning, the addon's one node.
    others = [n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary]
    if len(others) == 1:
        return others[0]
    if operation.kind == "provision" and cluster.primary_node is not None:
        return cluster.primary_node
    raise EffectError(f"operation {operation.id} placed no node in the cluster of addon {cluster.addon}")


def redundant_pair(cluster: Cluster, addon: str, doing: str) -> tuple[dict, dict]:
    """A Business cluster's primary and its running replica; refused (`doing` is what waits for it)
    while it runs degraded: an operation that moves its nodes needs a replica in sync."""
    primary = serving_node(cluster)
    replica = next((n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != primary["id"]
                    and n["state"] == "running"), None)
    if replica is None or cluster.degraded:
        raise AddonNotRunning(f"addon {addon} runs without a replica in sync: {doing} once it is redundant again "
                              "(see `nodes`)")
    return primary, replica


def left_behind(cluster: Cluster) -> list[dict]:
    """The live data nodes beside the primary: a plan change's or restore's old node, once replaced."""
    return [n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary]


async def cluster_of(events: EventLog, addon: str) -> Cluster:
    """The addon's cluster; one recorded before clusters existed is adopted here, to be saved with
    the change the caller makes (the engine's start adopts the others)."""
    try:
        return await events.get(Cluster.id_for(addon))
    except AggregateNotFoundError:
        return adopted_cluster(await events.get(Addon.id_for(addon)))


SERVING = ("running", "changing-plan", "restoring", "upgrading", "removing")  # the addon's own node runs (or ran) in these
MOVING = ("changing-plan", "restoring", "upgrading")  # a plan change, a restore or an upgrade has placed a second node


def adopted_cluster(addon: Addon, holdings: dict | None = None, cleanup_pending: bool = False) -> Cluster:
    """A cluster formed from what an addon's events said: its node; the one a plan change or a
    restore in flight placed; and, while that operation's cleanup is pending, the node it replaced.
    `holdings` (what the inventory says each role holds) gives the memory and ports each was placed
    with, where it knows them."""
    cluster = Cluster(addon=addon.name, app=addon.app, adopted=True)
    if addon.status == "failed" and addon.failure_kind == "provisioning":
        return cluster  # its node was removed when provisioning failed
    holdings = holdings or {}
    current = {**addon.previous_node, "memory_mib": addon.memory_mib}
    if addon.target and addon.status == "running" and addon.target.get("tls_port") and not addon.tls_port:
        current["tls_port"] = addon.target["tls_port"]  # serving TLS in flight: its port is held since the request
    nodes = [("current", current, "running" if addon.status in SERVING else "placed", True)]
    if addon.target and addon.status in MOVING:
        nodes.append(("target", addon.target, "placed", False))
    if addon.replaced and cleanup_pending:
        nodes.append(("replaced", {**addon.replaced, "memory_mib": addon.memory_mib}, "placed", False))
    for role, node, state, primary in nodes:
        if (held := holdings.get(role)) is not None:
            node = {**node, "memory_mib": held.memory_mib, "tls_port": held.tls_port}
        cluster.adopt_node(node=data_node(addon, node), state=state, primary=primary)
    return cluster


def promote(cluster: Cluster, node_id: str, reason: str) -> None:
    """A node the engine made ready serves the app now."""
    cluster.mark_node_started(node_id)
    if cluster.primary != node_id:
        cluster.change_primary(new=node_id, reason=reason)
