"""A backup as a saga (reference, "Backups"):

save     the node saves its data in the background (BGSAVE); writes wait only for the fork, and the
         keys are counted at that instant. A Business addon's backup is taken on a replica in sync
         (engine/backup_source.py: which node, what in sync means, the fallback on the primary)
archive  that node's RDB file is read through the Docker archive API, gzipped and stored with its
         SHA-256; a replica's file must record the offset its save was taken at
record   the save rules come back (only now: an archive step run again must find the same file);
         the backup is done (size, checksum, key counts, where it was taken) and the addon free again

A failure removes the partial archive and records the backup as failed, with the reason.
"""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.backup import Backup
from domain.operation import Operation
from domain.redis_config import save_rules
from engine.backup_archive import archive_saved_file
from engine.backup_source import described, saves_to_resume, take_snapshot
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import BackupStore, EffectError, RedisAdmin, Runtime, SecretStore, TransientError
from engine.saga import StepResult
from engine.store import EventLog


class BackupSaga:
    kind = "backup"
    deadlines = {"save": 900.0, "archive": 1800.0}  # a large dataset takes a while to write and to copy

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore, store: BackupStore):
        self.events, self.runtime, self.redis, self.secrets, self.store = events, runtime, redis, secrets, store

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        backup: Backup = await self.events.get(UUID(operation.subject))
        return await getattr(self, step)(addon, backup, operation)

    async def save(self, addon: Addon, backup: Backup, operation: Operation) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        taken = await take_snapshot(self.redis, cluster, self.secrets.password_for(addon.name))
        where = described(taken.get("taken_on"))
        return StepResult(f"{sum(taken['keys'].values())} keys saved in the background{where}", outcome=taken)

    async def archive(self, addon: Addon, backup: Backup, operation: Operation) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        stored = await archive_saved_file(self.runtime, self.store, cluster, operation.outcome("save"), backup.archive_key)
        return StepResult(f"{backup.name} stored: {stored['size']} bytes, SHA-256 {stored['sha256'][:12]}", outcome=stored)

    async def record(self, addon: Addon, backup: Backup, operation: Operation) -> StepResult:
        note = await self._resume_saves(addon, operation)
        stored = operation.outcome("archive")
        snapshot = dict(operation.outcome("save"))
        taken_on = snapshot.pop("taken_on", None)
        backup.mark_done(size=stored["size"], sha256=stored["sha256"], location=stored["location"],
                         snapshot=snapshot, taken_on=taken_on)
        addon.mark_backup_ended(operation_id=operation.id)
        return StepResult(f"Backup successfully finished{described(taken_on)}{note}", changes=(backup, addon))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        backup: Backup = await self.events.get(UUID(operation.subject))
        try:
            await self.store.delete(backup.archive_key)
            detail = "no archive left behind"
        except OSError as e:
            detail = f"the archive could not be removed ({e})"
        detail += await self._resume_saves(addon, operation)
        backup.mark_failed(reason=error)
        if addon.operation_id == operation.id:
            addon.mark_backup_ended(operation_id=operation.id)
        return StepResult(f"backup failed: {error}; {detail}", changes=(backup, addon))

    async def _resume_saves(self, addon: Addon, operation: Operation) -> str:
        cluster = await cluster_of(self.events, addon.name)
        notes = []
        for node in saves_to_resume(cluster, operation.outcome("save")):
            try:
                await self.redis.resume_saves(endpoint(node, self.secrets.password_for(addon.name)),
                                              save_rules(addon.settings))
            except (TransientError, EffectError) as e:  # the node is down: its redis.conf has the rules for its restart
                notes.append(f"; save rules not set back on the running node ({e})")
        return "".join(notes)
