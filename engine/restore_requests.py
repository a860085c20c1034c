"""Asking for a restore (issue 12, parts 4 and 5): which backup, into which addon, and where the new
nodes go.

A backup is named by its ID alone, whatever addon it was made of: one of the target's own, or of another
addon of this installation, of any app, removed ones included while retention keeps their backups (what
Heroku calls a fork). The same checks hold for all: the backup finished and is still stored, the target's
engine version can load its file, and its data fits the target's plan (the reference's downgrade rule).

A Starter addon's node is replaced in place (engine/restore.py); a Business addon gets a new pair of
data nodes (engine/cluster_restore.py), placed here, each on its own host, like a plan change's.
"""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.backup import Backup
from domain.catalog import PlanCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.errors import AddonNotRunning, DatasetTooLarge, UnknownBackup
from domain.operation import Operation
from engine.cluster_forming import replacement_node
from engine.clusters import cluster_of, data_node, redundant_pair
from engine.operations import OperationStarter
from engine.placing import Placer, Placing
from engine.store import AggregateNotFoundError, EventLog

MiB = 1024 * 1024


async def backup_named(events: EventLog, backup_id: str) -> Backup:
    """The backup with this ID, of whichever addon."""
    try:
        backup = await events.get(UUID(str(backup_id)))
    except ValueError:
        raise UnknownBackup(f"unknown backup {backup_id!r}: a backup ID looks like 9f1c2e4a-… (see `backups`)") from None
    except AggregateNotFoundError:
        backup = None
    if not isinstance(backup, Backup):
        raise UnknownBackup(f"there is no backup {backup_id!r} (see `backups` of the addon it was made of for the IDs)")
    return backup


def check_fits(backup: Backup, target: Addon) -> None:
    """The reference's downgrade rule, for a restore: the backup's data must fit the target's plan."""
    held = backup.snapshot.get("used_memory", 0)
    if not target.settings.get("cache_mode") and held > target.memory_mib * MiB:
        raise DatasetTooLarge(f"backup {backup.id} of addon {backup.addon} held {held / MiB:.1f} MiB of data and addon "
                              f"{target.name}'s plan {target.plan} has {target.memory_mib} MiB: change to a larger "
                              "plan first, or restore into a larger addon")


class RestoreRequests:
    def __init__(self, events: EventLog, plans: PlanCatalog, versions: VersionCatalog, starter: OperationStarter,
                 placing: Placing | None):
        self.events, self.plans, self.versions, self.starter, self.placing = events, plans, versions, starter, placing

    async def request(self, target: Addon, backup_id: str) -> dict:
        backup = await backup_named(self.events, backup_id)
        backup.check_downloadable()
        self.versions.check_can_load(backup.redis_version or target.redis_version, target.redis_version)
        check_fits(backup, target)
        if self.plans.get(target.plan).is_cluster:
            operation = await self._into_cluster(target, backup)
        else:
            operation = await self._into_node(target, backup)
        return {"addon": target.name, "backup_id": str(backup.id), "operation_id": str(operation.id),
                "from_addon": backup.addon, "from_app": backup.app}

    async def _into_node(self, target: Addon, backup: Backup) -> Operation:
        operation = Operation(kind="restore", addon=target.name, app=target.app, subject=str(backup.id))
        node = f"redis-addons-{target.name}-{operation.id.hex[:8]}"
        target.request_restore(backup.id, node, f"{node}-data", operation.id,
                               dataset_bytes=backup.snapshot.get("used_memory", 0))
        cluster = await cluster_of(self.events, target.name)
        cluster.place_node(data_node(target, target.target, operation.id))
        return await self.starter.start(operation, target, cluster)

    async def _into_cluster(self, target: Addon, backup: Backup) -> Operation:
        """Two new data nodes on two hosts, the old pair kept beside them until the switch: each host
        needs room for the plan's memory once more."""
        if self.placing is None:
            raise AddonNotRunning(f"addon {target.name} is a Business addon and this engine was built without "
                                  "placement for restores: restore into a Starter addon")
        cluster = await cluster_of(self.events, target.name)
        primary, replica = redundant_pair(cluster, target.name, "it can be restored")
        async with self.placing.held() as placer:
            operation = Operation(kind="restore_cluster", addon=target.name, app=target.app, subject=str(backup.id))
            new = place_beside(placer, target, cluster, (primary, replica), operation)
            target.request_restore(backup.id, new[0]["container"], new[0]["volume"], operation.id,
                                   dataset_bytes=backup.snapshot.get("used_memory", 0))
            position = await self.starter.record(operation, target, cluster)
        await self.starter.caught_up(position)
        return operation


def place_beside(placer: Placer, addon: Addon, cluster: Cluster, pair: tuple[dict, dict], operation: Operation,
                 version: str | None = None) -> list[dict]:
    """Two new data nodes on two hosts, for the cluster's (primary, replica), kept beside them until the
    Sentinels move (a restore; an upgrade that stops writes: then on the new `version`'s build). Placed in
    the cluster; returned first (the new primary), second."""
    first = placer.replacement("data", addon.memory_mib, avoid={})
    second = placer.replacement("data", addon.memory_mib, avoid={first.host: "takes the first new node"})
    new = []
    for old, where in zip(pair, (first, second)):  # one at a time: a node's name counts the others
        new.append(replacement_node(addon, cluster, old, where, operation, memory_mib=addon.memory_mib,
                                    version=version))
        cluster.place_node(new[-1])
    return new
