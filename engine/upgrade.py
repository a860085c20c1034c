"""A Starter addon's engine upgrade as a saga (reference, "Database Upgrade": Starter plans "have to stop
the node to upgrade it, causing an inevitable downtime"; "once the operation is finished, the application
is restarted"), after a safety backup, then the plan change's node swap at the same place onto the new
version's build:

safety_backup  a backup of kind pre-upgrade of the running node, before anything is paused or stopped
               (engine/safety_backup.py; a Sandbox addon has none: its old data is kept as a copy until cleanup)
stop           pause writes, save, count the keys of each database, stop the node (kept until the end)
start_new      a container of the new build on the same host and port, on a copy of the data files: a newer
               server may rewrite them (7.0 turns a 6.2 AOF into `appendonlydir`, which 6.2 cannot read),
               so the old ones stay as they were until the new node is verified
wait_ready     the new node has loaded the data (Redis checks an RDB's CRC64) and answers PING
verify         it holds the saved keys, per database
publish        the addon runs the new version (same URL)
open_writes    the new node takes writes: until the upgrade is published it refuses them (NOREPLICAS), since
               it listens where the old one did and a write it took would be lost were the upgrade undone
cleanup        the old container and its volume are removed
restart_app    the app is restarted

Before `publish`, a failure brings the old version back with its data untouched; one of the safety backup
changed nothing else, and leaves no half-made backup (it is marked failed, its archive removed). A safety
backup taken whole is kept whatever becomes of the upgrade.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.operation import Operation
from engine.clusters import cluster_of, serving_node
from engine.plan_change import PlanChange
from engine.safety_backup import DEADLINE_S, SafetyBackup
from engine.nodes import endpoint, node_spec
from engine.ports import NodeSpec
from engine.saga import StepResult


class Upgrade(PlanChange):
    kind = "upgrade"
    deadlines = {**PlanChange.deadlines, "safety_backup": DEADLINE_S}

    def __init__(self, *args, safety_backup: SafetyBackup, **kwargs):
        super().__init__(*args, **kwargs)
        self.backups_first = safety_backup

    async def safety_backup(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        return await self.backups_first.take(addon, operation)

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        if step != "safety_backup":
            return None  # the node swap's steps are undone together, by compensate
        return await self.backups_first.undo(await self.events.get(Addon.id_for(operation.addon)), operation)

    def new_node_spec(self, addon: Addon, node: dict, operation: Operation, password: str) -> NodeSpec:
        # It listens where the old node did: the app reaches it as soon as it answers. A write it took before
        # `publish` would be lost were the upgrade undone (and `verify` would find more keys than were saved).
        return node_spec(addon, node, operation, password, self.versions, self.certificates, refuse_writes=True)

    async def open_writes(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        """The new build, published, takes writes: live, then in its file (a restart must not refuse them)."""
        node = serving_node(await cluster_of(self.events, addon.name))
        await self.redis.configure(endpoint(node, password), {"min-replicas-to-write": "0"})
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, None))
        return StepResult(f"{node['container']} takes writes")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        version = addon.target["redis_version"]
        cluster, replaced = await self.promote_new_node(addon, operation, f"upgrade to {version}")
        addon.mark_upgraded(operation_id=operation.id)
        return StepResult(f"now {self.versions.get(version).engine} {version} on {serving_node(cluster)['host']}; "
                          "REDIS_URL unchanged", outcome=replaced, changes=(addon, cluster))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if operation.past_point_of_no_return:
            # The new build serves the app already: undoing would lose its writes; it must take them.
            if "open_writes" in operation.step_names and not operation.step_succeeded("open_writes"):
                await self.open_writes(addon, operation, self.secrets.password_for(addon.name))
            return StepResult(f"nothing undone: the addon runs {addon.redis_version} ({error})")
        if untouched(operation):
            cluster = await cluster_of(self.events, addon.name)
            await self._remove(cluster, [n for n in cluster.nodes.values()
                                         if n.get("placed_by") == str(operation.id) and n["state"] != "retired"])
            addon.mark_upgrade_failed(operation_id=operation.id, reason=error)
            return StepResult(f"nothing changed: the addon runs {addon.redis_version} as before", changes=(addon, cluster))
        cluster = await self.bring_back_old_node(addon, operation)
        addon.mark_upgrade_failed(operation_id=operation.id, reason=error)
        return StepResult(f"back on {addon.redis_version} with its data: new node removed, old node running",
                          changes=(addon, cluster))


def untouched(operation: Operation) -> bool:
    """The node was never paused or stopped: the upgrade failed at its safety backup."""
    return "stop" in operation.step_names and next(s for s in operation.steps if s["name"] == "stop")["status"] == "pending"
