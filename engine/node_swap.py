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
from engine.clusters import cluster_of, left_behind, node_placed_by, serving_node
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

    async def cleanup(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        """The node replaced (the primary before `publish`) is removed, with its volumes."""
        cluster = await cluster_of(self.events, addon.name)
        removed = await self._remove_left_behind(cluster)
        return StepResult(f"old node {', '.join(removed) or '(removed already)'} removed", changes=(cluster,))

    async def bring_back_old_node(self, addon: Addon) -> Cluster:
        """The new node removed, the old one (still the primary) running again and taking writes:
        returns the cluster with the new node retired."""
        cluster = await cluster_of(self.events, addon.name)
        old, password = serving_node(cluster), self.secrets.password_for(addon.name)
        await self._remove_left_behind(cluster)
        await self.runtime.start_node(old["host"], old["container"])
        await self.redis.ping(endpoint(old, password))
        await self.redis.unpause(endpoint(old, password), save_rules(addon.settings))
        return cluster

    async def _remove_left_behind(self, cluster: Cluster) -> list[str]:
        """Every data node beside the primary: before `publish` the new one, after it the old one."""
        removed = []
        for node in left_behind(cluster):
            await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            cluster.retire_node(node["id"])
            removed.append(f"{node['container']} on {node['host']}")
        return removed
