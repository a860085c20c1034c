"""A Business addon's engine upgrade with no downtime, as a saga (reference, "Database Upgrade": Business
plans get a "zero-downtime upgrade of minor version"; "once the operation is finished, the application is
restarted"). Also a major step, where the new version is proven to replicate from the old one (the
catalogue's `rolling_from`, domain/upgrade_path.py); a major step that is not is taken by stopping writes
(engine/cluster_upgrade_stopped.py).

The Business plan change's rolling replacement (engine/cluster_plan_change.py), its new data nodes on the
new version's build: a replica may be newer than its primary, never older, so the new nodes replicate the
old primary, then the coordinated switch makes one of them the primary with every acknowledged write.

safety_backup                 a Backup of kind pre-upgrade, from the replica (engine/safety_backup.py)
add_first .. retire_primary   as a plan change: the new nodes join as replicas, in sync, the old replica
                              goes, the primary switches onto a new node, the old primary goes
publish                       the addon runs the new version (the entry, so the URL, unchanged)
restart_app                   the app is restarted, as the reference says

Each node's record says the build it runs, so a cluster half-way through shows two versions (`database-
version`), and a crashed engine resumes the saga where it stopped. Before `retire_replica` a failure removes
the new nodes: the cluster is as it was. After, nothing is undone: the cluster keeps the node that holds the
data (a newer one, maybe: a node is never moved back to an older build), and the upgrade can be asked again.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.operation import Operation
from engine.app_restart import restart_app
from engine.cluster_plan_change import ClusterPlanChange, Move
from engine.ports import AppRestarter, EffectError
from engine.safety_backup import DEADLINE_S, SafetyBackup
from engine.saga import StepResult


class ClusterUpgrade(ClusterPlanChange):
    kind = "upgrade_cluster"
    deadlines = {**ClusterPlanChange.deadlines, "safety_backup": DEADLINE_S}

    def __init__(self, *args, restarter: AppRestarter, safety_backup: SafetyBackup, **kwargs):
        super().__init__(*args, **kwargs)
        self.restarter, self.backups_first = restarter, safety_backup

    async def safety_backup(self, m: Move, operation) -> StepResult:
        return await self.backups_first.take(m.addon, operation)

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        if step != "safety_backup":
            return None  # the rolling replacement's steps are undone together, by compensate
        return await self.backups_first.undo((await self._move(operation)).addon, operation)

    async def add_first(self, m: Move, operation) -> StepResult:
        # From `retire_replica` on nothing is undone: the second node's host must have the build before the first goes.
        image = self.versions.get(m.addon.target["redis_version"]).image
        for node in (m.first, m.second):
            if await self.runtime.image_id(node["host"], image) is None:
                raise EffectError(f"{node['host']} has no image {image}: run `make setup` there, then upgrade again")
        return await super().add_first(m, operation)

    def why(self, m: Move) -> str:
        return f"upgrade to {m.addon.target['redis_version']}"

    def mark_failed(self, addon: Addon, operation: Operation, error: str) -> None:
        addon.mark_upgrade_failed(operation_id=operation.id, reason=error)

    async def publish(self, m: Move, operation) -> StepResult:
        version = m.addon.target["redis_version"]
        m.addon.mark_upgraded(operation_id=operation.id)
        return StepResult(f"now {self.versions.get(version).engine} {version} on every data node: REDIS_URL "
                          "unchanged (the entry address)", changes=(m.addon,))

    async def restart_app(self, m: Move, operation) -> StepResult:
        return StepResult(await restart_app(self.events, self.restarter, m.addon, self._passwords(m.addon)[0]))
