"""The backup an engine upgrade takes before it touches the addon (issue 13: "a safety backup first"), as
one step of the upgrade's saga: a Backup of kind `pre-upgrade`, listed, downloadable and restorable as any
backup, kept by the retention policy as a manual one is (domain/retention.py).

take   the Backup is recorded as running before any data is read (its ID is the upgrade's, so the step run
       again after a crash finds it and takes it again); the node saves in the background, a Business
       addon's on a replica in sync as its scheduled and manual backups are (engine/backup_source.py); the
       file is archived; the save rules come back; the backup is done, recorded with the step's success
undo   a backup the step could not finish is marked failed, its archive removed and the save rules set
       back, as the backup saga's compensation does; a finished one is kept: it holds the data as it was

A Sandbox addon has no backups: nothing is taken, and the step says why. Its upgrade keeps the old data
as a copy until the end instead: the old node's volume goes only at `cleanup`, after the new node is
verified and published.
"""

from __future__ import annotations

from datetime import datetime, timezone

from domain.addon import Addon
from domain.backup import Backup
from domain.catalog import PlanCatalog
from domain.cluster import Cluster
from domain.operation import Operation
from domain.redis_config import save_rules
from engine.backup_archive import archive_saved_file
from engine.backup_source import described, saves_to_resume, take_snapshot
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import BackupStore, EffectError, RedisAdmin, Runtime, SecretStore, TransientError
from engine.saga import StepResult
from engine.store import AggregateNotFoundError, EventLog

DEADLINE_S = 2700.0  # a backup's save and archive steps together (engine/backup_saga.py)
NOT_ON_SANDBOX = ("no backup taken: a Sandbox addon has no backups; its old data is kept as a copy until the end "
                  "(the old node and its volume are removed only once the new version is verified and published)")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SafetyBackup:
    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 store: BackupStore, plans: PlanCatalog, clock=utc_now):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.store, self.plans, self.clock = store, plans, clock

    async def take(self, addon: Addon, operation: Operation) -> StepResult:
        """The step: call it before anything is paused or stopped; its outcome names the backup (None on Sandbox)."""
        if self.plans.get(addon.plan).tier == "sandbox":
            return StepResult(NOT_ON_SANDBOX, outcome={"backup_id": None})
        backup = await self._recorded(addon, operation)
        if backup.status == "done":
            return StepResult(said(backup), outcome={"backup_id": str(backup.id)})
        if backup.status == "failed":  # undone already: the upgrade it was for has failed
            raise EffectError(f"pre-upgrade backup {backup.id} failed: {backup.failure}")
        cluster = await cluster_of(self.events, addon.name)
        snapshot = await take_snapshot(self.redis, cluster, self.secrets.password_for(addon.name))
        stored = await archive_saved_file(self.runtime, self.store, cluster, snapshot, backup.archive_key)
        note = await self._resume_saves(addon, cluster, snapshot)
        taken_on = snapshot.pop("taken_on", None)
        backup.mark_done(size=stored["size"], sha256=stored["sha256"], location=stored["location"],
                         snapshot=snapshot, taken_on=taken_on)
        return StepResult(said(backup) + note, outcome={"backup_id": str(backup.id)}, changes=(backup,))

    async def undo(self, addon: Addon, operation: Operation) -> StepResult | None:
        """The undo of `take`, for the saga's undo_step: None when there is nothing to undo (none taken, or
        one taken whole, which is kept)."""
        try:
            backup: Backup = await self.events.get(Backup.pre_upgrade_id(operation.id))
        except AggregateNotFoundError:
            return None
        if backup.status == "done":
            return None
        try:
            await self.store.delete(backup.archive_key)
            detail = "no archive left behind"
        except OSError as e:
            detail = f"the archive could not be removed ({e})"
        detail += await self._resume_saves(addon, await cluster_of(self.events, addon.name), None)
        if backup.status != "failed":
            backup.mark_failed(reason=operation.error or "the upgrade failed")
        return StepResult(f"pre-upgrade backup {backup.id} failed: {backup.failure}; {detail}", changes=(backup,))

    async def _recorded(self, addon: Addon, operation: Operation) -> Backup:
        """The upgrade's backup, recorded as running: before the data is read, so that a failure or a crash
        from here on finds it, and its archive, to undo."""
        try:
            return await self.events.get(Backup.pre_upgrade_id(operation.id))
        except AggregateNotFoundError:
            pass
        backup = Backup.request(addon=addon.name, app=addon.app, tier=self.plans.get(addon.plan).tier,
                                kind="pre-upgrade", requested_at=self.clock(), redis_version=addon.redis_version,
                                operation_id=operation.id)
        backup.mark_started()
        await self.events.save(backup)
        return backup

    async def _resume_saves(self, addon: Addon, cluster: Cluster, snapshot: dict | None) -> str:
        notes = []
        for node in saves_to_resume(cluster, snapshot):
            try:
                await self.redis.resume_saves(endpoint(node, self.secrets.password_for(addon.name)),
                                              save_rules(addon.settings))
            except (TransientError, EffectError) as e:  # the node is down: its redis.conf has the rules for its restart
                notes.append(f"; save rules not set back on the running node ({e})")
        return "".join(notes)


def said(backup: Backup) -> str:
    """The step's text: which backup, of which version, holding what."""
    keys = sum(backup.snapshot.get("keys", {}).values())
    return (f"pre-upgrade backup {backup.id} of {backup.redis_version} taken: {keys} keys, {backup.size} bytes "
            f"({backup.name}){described(backup.taken_on)}")
