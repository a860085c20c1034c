"""A Business addon's major upgrade that cannot roll, as a saga (reference, "Database Upgrade": a major
version "stops the nodes"; "once the operation is finished, the application is restarted"). Taken when the
catalogue does not record that a replica of the new build follows a primary of the old one
(domain/upgrade_path.py `rolling`): the new nodes cannot replicate the old primary, so its data is moved the
way a restore moves a backup's (engine/cluster_restore.py), from a safety backup taken once writes stop.

stop_writes    the old primary refuses writes (NOREPLICAS: refused, never acknowledged then lost), and
               its replica has every write it acknowledged
safety_backup  a Backup of kind pre-upgrade, from the replica (engine/safety_backup.py): the data to move
check .. cleanup   as a restore: a new primary of the new build loaded from that backup, verified, the
               addon's settings, its replica in sync, the Sentinels moved onto it, the old pair removed
publish        the addon runs the new version (same REDIS_URL: the entry does not change)
restart_app    the app is restarted

Reads are served all along; writes are refused from `stop_writes` until every Sentinel names the new primary.
Should the old primary have taken writes meanwhile (restarted, it reads `min-replicas-to-write 1` from its
file; failed over, a replica that takes writes is the primary), `switch` fails rather than drop them. Before
`switch` a failure removes the new nodes and lets the old primary take writes again, with its data; the
safety backup, once whole, is kept.
"""

from __future__ import annotations

from domain.backup import Backup
from domain.cluster_config import MASTER_NAME, WRITES_STOPPED
from domain.operation import Operation
from engine.app_restart import restart_app
from engine.cluster_restore import ClusterRestore, Restoring, at
from engine.ports import AppRestarter, EffectError, TransientError
from engine.primary_switch import caught_up
from engine.safety_backup import DEADLINE_S, SafetyBackup
from engine.saga import StepResult

class ClusterUpgradeStopped(ClusterRestore):
    kind = "upgrade_cluster_stopped"
    deadlines = {**ClusterRestore.deadlines, "stop_writes": 60.0, "safety_backup": DEADLINE_S}

    def __init__(self, *args, restarter: AppRestarter, safety_backup: SafetyBackup, **kwargs):
        super().__init__(*args, **kwargs)
        self.restarter, self.backups_first = restarter, safety_backup

    async def _backup(self, r: Restoring) -> Backup:
        return await self.events.get(Backup.pre_upgrade_id(r.operation.id))

    async def stop_writes(self, r: Restoring) -> StepResult:
        await self.redis.configure(self._endpoint(r, r.old_primary), {"min-replicas-to-write": str(WRITES_STOPPED)})
        replica = r.old[1]
        try:
            offset = await caught_up(self.redis, lambda node: self._endpoint(r, node), r.old_primary, (replica,))
        except TransientError:
            raise TransientError(f"{replica['container']} has not every write {r.old_primary['container']} "
                                 "acknowledged yet") from None
        return StepResult(f"writes refused on {r.old_primary['container']} (reads served); {replica['container']} "
                          f"has every write it acknowledged (offset {offset})")

    async def switch(self, r: Restoring) -> StepResult:
        named = await self._named(r)
        if named != at(r.first):  # not begun, or begun before a crash with the Sentinels still naming the old one
            await self._writes_still_stopped(r, named)
        return await super().switch(r)

    async def _writes_still_stopped(self, r: Restoring, named: str | None) -> None:
        """The old primary has taken no write since the safety backup: it still refuses them (a restart would
        have read `1` from its file) and the Sentinels still name it (a failover would have promoted a replica
        that takes them). Else the new pair lacks those writes: the upgrade fails, giving the cluster back."""
        old = self._endpoint(r, r.old_primary)
        asked = (await self.redis.configuration(old, ["min-replicas-to-write"]))["min-replicas-to-write"]
        if asked != str(WRITES_STOPPED) or named != at(r.old_primary):
            raise EffectError(f"{r.old_primary['container']} may have taken writes since they were stopped "
                              f"(it asks min-replicas-to-write {asked}; the Sentinels name {named}): the new pair "
                              "would lack them")

    async def _named(self, r: Restoring) -> str | None:
        views = []
        for sentinel in r.live("sentinel"):
            try:
                views.append((await self.redis.sentinel_view(self._sentinel(r, sentinel), MASTER_NAME))["primary"])
            except TransientError:
                continue
        return max(set(views), key=views.count) if views else None

    async def safety_backup(self, r: Restoring) -> StepResult:
        return await self.backups_first.take(r.addon, r.operation)

    async def publish(self, r: Restoring) -> StepResult:
        version = r.addon.target["redis_version"]
        self.mark_done(r)
        return StepResult(f"now {self.versions.get(version).engine} {version} on both data nodes, from pre-upgrade "
                          f"backup {Backup.pre_upgrade_id(r.operation.id)}; REDIS_URL unchanged", changes=(r.addon,))

    async def restart_app(self, r: Restoring) -> StepResult:
        return StepResult(await restart_app(self.events, self.restarter, r.addon, self._passwords(r)[0]))

    def why(self, r: Restoring) -> str:
        return f"upgrade to {r.addon.target['redis_version']} (writes stopped)"

    def mark_done(self, r: Restoring) -> None:
        r.addon.mark_upgraded(operation_id=r.operation.id)

    def mark_failed(self, r: Restoring, error: str) -> None:
        r.addon.mark_upgrade_failed(operation_id=r.operation.id, reason=error)

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        r = await self._restoring(operation)
        if step == "safety_backup":
            return await self.backups_first.undo(r.addon, operation)
        if step == "stop_writes":  # the old primary serves on: it takes writes again, as it did
            # As provisioned; the failover follower lowers it again should its replica be gone.
            await self.redis.configure(self._endpoint(r, r.old_primary), {"min-replicas-to-write": "1"})
            return StepResult(f"{r.old_primary['container']} takes writes again")
        return None
