"""What a plan change and a restore share: the addon's node is replaced by a new one.

The current node is frozen (writes paused, data saved and its keys counted) and stopped; a new
node is made ready; the new node is published as the addon's; the old one is removed. Until
the new node is published, a failure brings the old one back with its data untouched.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.cluster import Cluster
from domain.operation import Operation
from domain.redis_config import save_rules
from engine.clusters import cluster_of, left_behind, node_placed_by, promote, serving_node
from engine.nodes import endpoint
from engine.ports import RedisAdmin, Runtime, SecretStore
from engine.saga import StepResult
from engine.store import EventLog

PAUSE_MS = 120_000  # writes wait while the node is saved and stopped; a stop ends the pause anyway


class NodeSwap:
    events: EventLog
    runtime: Runtime
    redis: RedisAdmin
    secrets: SecretStore
    stop_timeout_s: int

    async def stop(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        old = serving_node(await cluster_of(self.events, addon.name))
        if await self.runtime.is_running(old["host"], old["container"]) is False:
            # Stopped by an earlier attempt whose counts were lost in a crash: start it to take them again.
            await self.runtime.start_node(old["host"], old["container"])
            await self.redis.ping(endpoint(old, password))
        counts = await self.redis.freeze(endpoint(old, password), PAUSE_MS)
        await self.runtime.stop_node(old["host"], old["container"], self.stop_timeout_s)
        total = sum(counts["keys"].values())
        return StepResult(f"saved {total} keys and stopped {old['container']} on {old['host']}", outcome=counts)

    async def new_node(self, addon: Addon, operation: Operation) -> dict:
        return node_placed_by(await cluster_of(self.events, addon.name), operation)

    async def wait_ready(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        await self.redis.ping(endpoint(await self.new_node(addon, operation), password))
        return StepResult("PING answered")

    async def promote_new_node(self, addon: Addon, operation: Operation, reason: str) -> tuple[Cluster, dict]:
        """`publish`: the new node is the primary; the one it replaces is named in the step's outcome,
        so that this operation's cleanup removes that node and no other (the addon is free again
        from here on, and another operation may place a node beside the primary)."""
        cluster = await cluster_of(self.events, addon.name)
        new, old = node_placed_by(cluster, operation), serving_node(cluster)
        promote(cluster, new["id"], reason)
        return cluster, {"replaced": old["id"] if old["id"] != new["id"] else None}

    async def cleanup(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        """The node this operation replaced is removed, with its volumes."""
        cluster = await cluster_of(self.events, addon.name)
        if "replaced" in operation.outcome("publish"):
            replaced = operation.outcome("publish")["replaced"]
            nodes = [cluster.node(replaced)] if replaced and cluster.node(replaced)["state"] != "retired" else []
        else:  # published by a release that did not name it: the node left beside the primary
            nodes = left_behind(cluster)
        removed = await self._remove(cluster, nodes)
        return StepResult(f"old node {', '.join(removed) or '(removed already)'} removed", changes=(cluster,))

    async def bring_back_old_node(self, addon: Addon, operation: Operation) -> Cluster:
        """The new node removed, the old one (still the primary) running again and taking writes:
        returns the cluster with the new node retired."""
        cluster = await cluster_of(self.events, addon.name)
        old, password = serving_node(cluster), self.secrets.password_for(addon.name)
        mine = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
        new = [n for n in mine if n["state"] != "retired"] if mine else left_behind(cluster)
        if all(n["host"] != old["host"] for n in new):
            # The old node first when nothing new shares its host: a new host whose engine is down must
            # not keep the database stopped; the new node is removed once that engine answers again.
            await self._old_node_serves(addon, cluster, old, operation, password)
            await self._remove(cluster, new)
            return cluster
        await self._remove(cluster, new)  # on the old node's host and port (a restore): gone before it starts
        await self._old_node_serves(addon, cluster, old, operation, password)
        return cluster

    async def _old_node_serves(self, addon: Addon, cluster: Cluster, old: dict, operation: Operation, password: str) -> None:
        await self.before_old_node_starts(addon, cluster, old, operation)
        await self.runtime.start_node(old["host"], old["container"])
        await self.redis.ping(endpoint(old, password))
        await self.redis.unpause(endpoint(old, password), save_rules(addon.settings))

    async def before_old_node_starts(self, addon: Addon, cluster: Cluster, old: dict, operation: Operation) -> None:
        """The old node's files are its own: nothing to do (an upgrade in place may share them)."""

    async def _remove(self, cluster: Cluster, nodes: list[dict]) -> list[str]:
        """Each node's container, and its volume unless another node of the cluster still runs on it (an
        upgrade's new node on the old one's, each the other's)."""
        removed = []
        for node in nodes:
            shared = any(n["volume"] == node["volume"] for n in cluster.nodes.values()
                         if n["id"] != node["id"] and n["state"] != "retired")
            await self.runtime.remove_node(node["host"], node["container"], None if shared else node["volume"])
            cluster.retire_node(node["id"])
            removed.append(f"{node['container']} on {node['host']}")
        return removed
