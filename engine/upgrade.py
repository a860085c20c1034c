"""A Starter addon's engine upgrade as a saga (reference, "Database Upgrade": Starter plans "have to stop
the node to upgrade it, causing an inevitable downtime"; "once the operation is finished, the application
is restarted"), after a safety backup, then the plan change's node swap at the same place onto the new
version's build:

safety_backup  a backup of kind pre-upgrade of the running node, before anything is paused or stopped
               (engine/safety_backup.py; a Sandbox addon has none: its old data is kept as a copy until cleanup)
create_new     the new build's container, on the same host and port, made (not started, its configuration
               not yet written) while the old node still serves: out of the downtime
stop           pause writes, save, count the keys of each database, stop the node (kept until the end)
start_new      the new build's container configured and started. With RDB only, on the old node's own
               volume: it starts with no save rule and no AOF and refuses writes, so it writes nothing there
               and the old files stay byte for byte until `open_writes` (no copy: most of the downtime it
               would add). With AOF, or on a Sandbox (no safety backup), on a copy of the data files: a newer
               server may rewrite them (7.0 turns a 6.2 AOF into `appendonlydir`, which 6.2 cannot read),
               so the old ones stay as they were until the new node is verified
wait_ready     the new node has loaded the data (Redis checks an RDB's CRC64) and answers PING
verify         it holds the saved keys, per database
publish        the addon runs the new version (same URL)
open_writes    the new node takes writes, and saves by the addon's rules: until the upgrade is published it
               refuses them (NOREPLICAS), since it listens where the old one did and a write it took would be
               lost were the upgrade undone
cleanup        the old container is removed, and its volume unless the new node runs on it
restart_app    the app is restarted

Before `publish`, a failure brings the old version back with its data untouched: a new node on the old
volume is removed (killed: it saves nothing) and the volume kept, and the old node's redis.conf, on the
configuration volume they share, is written again before it starts. One of the safety backup changed nothing
else, and leaves no half-made backup (it is marked failed, its archive removed). A safety backup taken whole
is kept whatever becomes of the upgrade.
"""

from __future__ import annotations

from dataclasses import replace

from domain.addon import Addon
from domain.catalog import Plan
from domain.cluster import Cluster
from domain.operation import Operation
from domain.redis_config import save_rules
from engine.clusters import cluster_of, node_placed_by, serving_node
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

    def new_node_spec(self, addon: Addon, node: dict, operation: Operation, password: str,
                      on_old_files: bool = False) -> NodeSpec:
        # It listens where the old node did: the app reaches it as soon as it answers. A write it took before
        # `publish` would be lost were the upgrade undone (and `verify` would find more keys than were saved).
        # On the old node's files, it must not write them either: no save rule (none at shutdown), no AOF.
        settings = {**addon.settings, "rdb": False, "aof": False} if on_old_files else None
        # An upgrade recorded before `open_writes` existed has no step to give writes back: none refused then.
        return node_spec(addon, node, operation, password, self.versions, self.certificates, settings=settings,
                         refuse_writes="open_writes" in operation.step_names)

    async def create_new(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        # No file yet: on the old node's volume its configuration volume is the old node's too, which must
        # keep the old node's redis.conf while that node may still restart on it. `start_new` writes them.
        new = node_placed_by(await cluster_of(self.events, addon.name), operation)
        spec = replace(node_spec(addon, new, operation, password, self.versions, None), files={})
        await self.runtime.create_node(spec)
        return StepResult(f"{new['container']} made on {new['host']} from {spec.image}, not started")

    async def start_new(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        new, old = node_placed_by(cluster, operation), serving_node(cluster)
        if new["volume"] != old["volume"]:
            return await super().start_new(addon, operation, password)
        if await self.runtime.is_running(new["host"], new["container"]):
            return StepResult(f"{new['container']} already running on {new['host']}")
        await self.runtime.create_node(self.new_node_spec(addon, new, operation, password, on_old_files=True))
        await self.runtime.start_node(new["host"], new["container"])
        return StepResult(f"started on {old['container']}'s volume, which it leaves as it is until the upgrade is "
                          f"published; {new['memory_mib']} MiB on {new['address']}:{new['port']}")

    async def open_writes(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        """The new build, published, takes writes and saves by the addon's rules: live, then in its file (a
        restart must not refuse them). Only then is the addon upgraded, and free for another operation (one
        changing its settings meanwhile would race this file)."""
        node = serving_node(await cluster_of(self.events, addon.name))
        await self.redis.configure(endpoint(node, password), {"save": save_rules(addon.settings)})
        await self.redis.configure(endpoint(node, password), {"min-replicas-to-write": "0"})
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, None))
        if addon.operation_id == operation.id:
            addon.mark_upgraded(operation_id=operation.id)
        return StepResult(f"{node['container']} takes writes: the addon runs {addon.redis_version}", changes=(addon,))

    async def before_old_node_starts(self, addon: Addon, cluster: Cluster, old: dict, operation: Operation) -> None:
        """A new node made on the old volume wrote its redis.conf on the configuration volume they share:
        the old node's is written again before it starts."""
        mine = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
        if any(n["volume"] == old["volume"] for n in mine):
            password = self.secrets.password_for(addon.name)
            await self.runtime.create_node(node_spec(addon, old, operation, password, self.versions, None))

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        version = addon.target["redis_version"]
        cluster, replaced = await self.promote_new_node(addon, operation, f"upgrade to {version}")
        if "open_writes" not in operation.step_names:  # recorded before it existed: upgraded here, as then
            addon.mark_upgraded(operation_id=operation.id)
        return StepResult(f"now {self.versions.get(version).engine} {version} on {serving_node(cluster)['host']}; "
                          "REDIS_URL unchanged", outcome=replaced, changes=(addon, cluster))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if operation.past_point_of_no_return:
            # The new build serves the app already: undoing would lose its writes; it must take them, and the app
            # must be restarted onto it (a build without TLS took its TLS URL away).
            password, done = self.secrets.password_for(addon.name), []
            if "open_writes" in operation.step_names and not operation.step_succeeded("open_writes"):
                done.append((await self.open_writes(addon, operation, password)).detail)
            if "restart_app" in operation.step_names and not operation.step_succeeded("restart_app"):
                done.append((await self.restart_app(addon, operation, password)).detail)
            return StepResult("; ".join(done + [f"nothing undone: the addon runs {addon.redis_version} ({error})"]),
                              changes=(addon,))
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


def new_volume(addon: Addon, plan: Plan, old: dict, container: str) -> str:
    """The volume of the new build's node. With RDB only, the old node's: the new one writes nothing there
    until `open_writes`, so no copy of the data adds to the downtime. With AOF, a copy (a newer server may
    rewrite those files); on a Sandbox too, which has no safety backup: its old data is kept as a copy."""
    if addon.settings.get("aof") or plan.tier == "sandbox":
        return f"{container}-data"
    return old["volume"]


def untouched(operation: Operation) -> bool:
    """The node was never paused or stopped: the upgrade failed at its safety backup or making the new container."""
    return "stop" in operation.step_names and next(s for s in operation.steps if s["name"] == "stop")["status"] == "pending"
