"""A backup as a saga (reference, "Backups"):

save     the node saves its data in the background (BGSAVE); writes wait only for the fork, and the
         keys are counted at that instant
archive  the RDB file is read through the Docker archive API, gzipped and stored with its SHA-256
record   the node's save rules come back (only now: an archive step run again must find the same
         file); the backup is done (size, checksum, key counts) and the addon free again

A failure removes the partial archive and records the backup as failed, with the reason.
"""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.backup import Backup
from domain.operation import Operation
from domain.redis_config import save_rules
from engine.clusters import serving_node_of
from engine.nodes import endpoint
from engine.ports import BackupStore, EffectError, RedisAdmin, Runtime, SecretStore, TransientError
from engine.saga import StepResult
from engine.store import EventLog

RDB_FILE = "/data/dump.rdb"


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
        node = await serving_node_of(self.events, addon.name)
        counts = await self.redis.snapshot(endpoint(node, self.secrets.password_for(addon.name)))
        return StepResult(f"{sum(counts['keys'].values())} keys saved in the background", outcome=counts)

    async def archive(self, addon: Addon, backup: Backup, operation: Operation) -> StepResult:
        node = await serving_node_of(self.events, addon.name)
        rdb = self.runtime.read_file(node["host"], node["container"], RDB_FILE)
        stored = await self.store.write_archive(backup.archive_key, rdb)
        return StepResult(f"{backup.name} stored: {stored['size']} bytes, SHA-256 {stored['sha256'][:12]}", outcome=stored)

    async def record(self, addon: Addon, backup: Backup, operation: Operation) -> StepResult:
        note = await self._resume_saves(addon)
        stored = operation.outcome("archive")
        backup.mark_done(size=stored["size"], sha256=stored["sha256"], location=stored["location"],
                         snapshot=operation.outcome("save"))
        addon.mark_backup_ended(operation_id=operation.id)
        return StepResult(f"Backup successfully finished{note}", changes=(backup, addon))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        backup: Backup = await self.events.get(UUID(operation.subject))
        try:
            await self.store.delete(backup.archive_key)
            detail = "no archive left behind"
        except OSError as e:
            detail = f"the archive could not be removed ({e})"
        detail += await self._resume_saves(addon)
        backup.mark_failed(reason=error)
        if addon.operation_id == operation.id:
            addon.mark_backup_ended(operation_id=operation.id)
        return StepResult(f"backup failed: {error}; {detail}", changes=(backup, addon))

    async def _resume_saves(self, addon: Addon) -> str:
        try:
            node = await serving_node_of(self.events, addon.name)
            await self.redis.resume_saves(endpoint(node, self.secrets.password_for(addon.name)),
                                          save_rules(addon.settings))
            return ""
        except (TransientError, EffectError) as e:  # the node is down: its redis.conf has the rules for its restart
            return f"; save rules not set back on the running node ({e})"
