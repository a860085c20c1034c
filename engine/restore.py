"""Restoring a backup as a saga (beyond the reference): the backup's data goes into a new node
at the addon's place, and the new node takes over once its data is verified.

check       the archive in the store has the size and SHA-256 recorded when it was made
stop        writes paused, the current data saved, the node stopped (kept until the end)
load        a new node on the same host and port, with the backup's RDB file in its volume (AOF off:
            with AOF on, Redis would load the new node's empty AOF instead of the file)
wait_ready  the new node has loaded the file (Redis checks its CRC64) and answers PING
verify      it holds the backup's keys: per database, the count at the backup's save, less at
            most the keys that had an expiry (they may have expired since)
settings    the addon's own settings on the new node (AOF, if on, is written from the loaded data)
publish     the new node is the addon's (the URL is unchanged: same address, port and password)
cleanup     the old node and its volume are removed

Before `publish`, a failure brings the old node back with its data untouched.
"""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.backup import Backup
from domain.catalog import VersionCatalog
from domain.keyspace import differences
from domain.operation import Operation
from domain.redis_config import live_settings
from engine.node_swap import NodeSwap
from engine.ports import BackupStore, Certificates, EffectError, RedisAdmin, Runtime, SecretStore
from engine.nodes import endpoint, node_spec
from engine.saga import StepResult
from engine.store import EventLog


class Restore(NodeSwap):
    kind = "restore"
    deadlines = {"check": 900.0, "stop": 900.0, "load": 1800.0, "wait_ready": 900.0, "verify": 600.0}

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, store: BackupStore, certificates: Certificates, stop_timeout_s: int = 60):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.store, self.certificates, self.stop_timeout_s = versions, store, certificates, stop_timeout_s

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return await getattr(self, step)(addon, operation, self.secrets.password_for(addon.name))

    async def _backup(self, operation: Operation) -> Backup:
        return await self.events.get(UUID(operation.subject))

    async def check(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        return await check_archive(self.store, await self._backup(operation))

    async def load(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        new, backup = await self.new_node(addon, operation), await self._backup(operation)
        if await self.runtime.is_running(new["host"], new["container"]):
            return StepResult(f"{new['container']} already running on {new['host']}")
        await self.runtime.create_node(node_spec(addon, new, operation, password, self.versions, self.certificates,
                                                 settings={**addon.settings, "aof": False}))
        await self.runtime.put_files(new["host"], new["container"], "/data", self.store.read_tar(backup.archive_key))
        await self.runtime.start_node(new["host"], new["container"])
        return StepResult(f"{backup.name} loaded into {new['container']} on {new['host']}")

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        saved = (await self._backup(operation)).snapshot
        found = await self.redis.keyspace(endpoint(await self.new_node(addon, operation), password))
        if problems := differences(saved, found):
            raise EffectError("the restored data is not the backup's: " + "; ".join(problems))
        return StepResult(f"{sum(found['keys'].values())} keys, as in the backup")

    async def settings(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        new = await self.new_node(addon, operation)
        # Live first, then the file: a restart must not find `appendonly yes` before the AOF is written.
        await self.redis.configure(endpoint(new, password), live_settings(addon.settings))
        await self.runtime.create_node(node_spec(addon, new, operation, password, self.versions, None))  # its redis.conf
        return StepResult("AOF written from the restored data" if addon.settings.get("aof") else "settings as before")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster, replaced = await self.promote_new_node(addon, operation, f"restore of backup {operation.subject}")
        addon.mark_restored(operation_id=operation.id)
        return StepResult(f"backup {operation.subject} restored; same REDIS_URL", outcome=replaced,
                          changes=(addon, cluster))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if operation.past_point_of_no_return:
            return StepResult(f"nothing undone: the restored data serves the app already ({error})")
        cluster = await self.bring_back_old_node(addon, operation)
        addon.mark_restore_failed(operation_id=operation.id, reason=error)
        return StepResult("the node from before the restore serves again, with its data", changes=(addon, cluster))


async def check_archive(store: BackupStore, backup: Backup) -> StepResult:
    """`check`: the archive in the store has the size and SHA-256 recorded when it was made."""
    found = await store.checksum(backup.archive_key)
    if found is None:
        raise EffectError(f"the archive of backup {backup.id} is missing from the backup store")
    if found != (backup.size, backup.sha256):
        raise EffectError(f"the archive of backup {backup.id} changed since it was made: "
                          f"SHA-256 {found[1][:12]}, recorded {backup.sha256[:12]}")
    return StepResult(f"{backup.name}: {backup.size} bytes, SHA-256 as recorded")
