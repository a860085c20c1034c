"""Restoring a backup into a Business addon, as a saga (issue 12, part 4): the backup's data becomes the
cluster's on both data nodes; the old nodes stay until the new ones hold the verified data.

check         the archive in the store has the size and SHA-256 recorded when it was made
load          a new data node N1 (the plan's memory, placed when the restore was asked) with the backup's
              RDB file in its volume, a primary of its own (AOF off: Redis would load an empty AOF instead)
wait_ready    N1 has loaded the file (Redis checks its CRC64) and answers PING
verify        it holds the backup's keys: per database, as a Starter restore checks them
settings      the addon's own settings on N1 (live, then its file)
add_replica   a second new node N2, a replica of N1, not electable until in sync
sync_replica  N2 in sync: electable; both new nodes are known to HAProxy beside the old ones
switch        writes paused on the old primary, then each Sentinel, one at a time, stopped, its file
              rewritten to watch N1, started: from the second one on, HAProxy sends new clients to N1
cleanup       HAProxy forgets the old nodes; they are removed; every Sentinel sees the whole new cluster
publish       the addon is restored (same REDIS_URL: the entry address does not change)

Why not a failover onto a replica of the old primary, as a plan change does: a replica copies its primary,
whose data is the one being replaced. The new pair is formed apart from the old one and the Sentinels are
moved onto it. A Sentinel started on a fresh file knows only N1, learns N2 from N1's INFO and the other
Sentinels from their hello messages on N1 and N2: it never knew the old nodes, so nothing needs a SENTINEL
RESET (and no reset can meet a failover in progress: a Sentinel is never restarted while failing over).

N1 refuses every write (`min-replicas-to-write` past any replica count) until every Sentinel names it:
HAProxy routes to it once two do, and a switch undone half-way removes N1, so it must have acknowledged
nothing; loading and verifying need no write. Then it asks `min-replicas-to-write 1`, as every primary.

Writes made to the old primary during the restore are replaced by the backup's data: that is what a restore
means. From `switch` on, the old primary's writes are paused, so none is acknowledged there and then lost.

Before `switch` has succeeded, a failure puts every Sentinel back on the old primary, then removes the new
nodes (a node the Sentinels name is never removed), and the cluster is as it was, its writes resumed. After,
the restored data serves the app: what is left of the old nodes is removed and the restore recorded.
"""

from __future__ import annotations

import copy
from uuid import UUID

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain.addon import Addon
from domain.backup import Backup
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.cluster_config import MASTER_NAME, WRITES_STOPPED
from domain.keyspace import differences
from domain.operation import Operation
from domain.redis_config import live_settings
from engine.cluster_nodes import data_node_spec, sentinel_spec
from engine.cluster_provisioning import knows_whole_cluster, sentinel_secret
from engine.cluster_rewiring import SENTINEL_SEES_ALL_WITHIN_S, route_proxies
from engine.clusters import cluster_of
from engine.node_swap import PAUSE_MS
from engine.nodes import endpoint
from engine.ports import BackupStore, Certificates, EffectError, Endpoint, RedisAdmin, Runtime, SecretStore, TransientError
from engine.restore import check_archive
from engine.saga import StepResult
from engine.store import EventLog

SENTINEL_STOP_S = 10


class Restoring:
    """What a cluster restore works on: the addon, its cluster, the two nodes it placed (N1 first) and the
    data nodes they replace."""

    def __init__(self, addon: Addon, cluster: Cluster, operation: Operation):
        self.addon, self.cluster, self.operation = addon, cluster, operation
        self.first, self.second = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
        self.old = [cluster.node(n["replaces"]) for n in (self.first, self.second)]
        self.old_primary = self.old[0]  # N1 replaces the primary of when the restore was asked

    @property
    def new(self) -> list[dict]:
        return [self.first, self.second]

    def live(self, role: str) -> list[dict]:
        return [n for n in self.cluster.live_nodes if n["role"] == role]

    def running(self, role: str) -> list[dict]:
        return [n for n in self.live(role) if n["state"] == "running"]


def ids(nodes: list[dict]) -> set[str]:
    return {n["id"] for n in nodes}


def at(node: dict) -> str:
    return f"{node['address']}:{node['port']}"


class ClusterRestore:
    kind = "restore_cluster"
    deadlines = {"check": 900.0, "load": 1800.0, "wait_ready": 900.0, "verify": 600.0, "sync_replica": 900.0,
                 "switch": 300.0, "cleanup": 300.0}

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, store: BackupStore, components: ComponentCatalog,
                 certificates: Certificates | None = None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.store, self.components = versions, store, components
        self.certificates = certificates  # its new data nodes, in a cluster that serves TLS, get theirs

    async def _restoring(self, operation: Operation) -> Restoring:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return Restoring(addon, await cluster_of(self.events, addon.name), operation)

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        return await getattr(self, step)(await self._restoring(operation))

    async def _backup(self, r: Restoring) -> Backup:
        return await self.events.get(UUID(r.operation.subject))

    def _passwords(self, r: Restoring) -> tuple[str, str]:
        return self.secrets.password_for(r.addon.name), self.secrets.password_for(sentinel_secret(r.addon.name))

    def _endpoint(self, r: Restoring, node: dict) -> Endpoint:
        return endpoint(node, self._passwords(r)[0])

    def _sentinel(self, r: Restoring, node: dict) -> Endpoint:
        return endpoint(node, self._passwords(r)[1])

    # -- the new primary, from the backup ---------------------------------------------------------

    async def check(self, r: Restoring) -> StepResult:
        return await check_archive(self.store, await self._backup(r))

    async def load(self, r: Restoring) -> StepResult:
        node, backup = r.first, await self._backup(r)
        if await self.runtime.is_running(node["host"], node["container"]):
            return StepResult(f"{node['container']} already running on {node['host']}")
        loading = _with_settings(r.addon, {**r.addon.settings, "aof": False})
        await self.runtime.create_node(data_node_spec(loading, node, None, r.operation, self._passwords(r)[0],
                                                      self.versions, min_replicas=WRITES_STOPPED,
                                                      certificates=self.certificates))
        await self.runtime.put_files(node["host"], node["container"], "/data", self.store.read_tar(backup.archive_key))
        await self.runtime.start_node(node["host"], node["container"])
        return StepResult(f"{backup.name} loaded into {node['container']} on {node['host']} at {at(node)}")

    async def wait_ready(self, r: Restoring) -> StepResult:
        await self.redis.ping(self._endpoint(r, r.first))
        return StepResult("PING answered")

    async def verify(self, r: Restoring) -> StepResult:
        saved = (await self._backup(r)).snapshot
        found = await self.redis.keyspace(self._endpoint(r, r.first))
        if problems := differences(saved, found):
            raise EffectError("the restored data is not the backup's: " + "; ".join(problems))
        return StepResult(f"{sum(found['keys'].values())} keys, as in the backup")

    async def settings(self, r: Restoring) -> StepResult:
        # Live first, then the file: a restart must not find `appendonly yes` before the AOF is written.
        await self.redis.configure(self._endpoint(r, r.first), live_settings(r.addon.settings))
        await self.runtime.create_node(data_node_spec(r.addon, r.first, None, r.operation, self._passwords(r)[0],
                                                      self.versions, min_replicas=WRITES_STOPPED))
        return StepResult("AOF written from the restored data" if r.addon.settings.get("aof") else "settings as before")

    # -- its replica ---------------------------------------------------------------------------------

    async def add_replica(self, r: Restoring) -> StepResult:
        node = r.second
        if not await self.runtime.is_running(node["host"], node["container"]):
            await self.runtime.create_node(data_node_spec(r.addon, node, r.first, r.operation, self._passwords(r)[0],
                                                          self.versions, promotable=False, certificates=self.certificates))
            await self.runtime.start_node(node["host"], node["container"])
        return StepResult(f"{node['container']} started on {node['host']} at {at(node)}, a replica of "
                          f"{r.first['container']}")

    async def sync_replica(self, r: Restoring) -> StepResult:
        info = await self.redis.replication(self._endpoint(r, r.first))
        link = next((v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                     and f"{v.get('ip')}:{v.get('port')}" == at(r.second)), None)
        if link is None or link.get("state") != "online":
            raise TransientError(f"{r.second['container']} is not in sync with {r.first['container']} yet "
                                 f"({link or 'not connected'})")
        await self.redis.configure(self._endpoint(r, r.second), {"replica-priority": "100"})
        for node in r.new:
            if node["state"] != "running":
                r.cluster.mark_node_started(node["id"])
        await self._route(r, r.running("data"))  # old and new: HAProxy follows the Sentinels from the switch on
        return StepResult(f"{r.second['container']} in sync at offset {link.get('offset')}: electable, and known to "
                          "HAProxy", changes=(r.cluster,))

    # -- the switch ------------------------------------------------------------------------------------

    async def switch(self, r: Restoring) -> StepResult:
        await self._pause_old_primary(r)
        moved = await self._point_sentinels(r, r.first)
        # Only now, every Sentinel naming it, does N1 take writes: from the second Sentinel on, HAProxy sends
        # clients to it, and a switch undone half-way must not remove a node that acknowledged writes.
        await self.redis.configure(self._endpoint(r, r.first), {"min-replicas-to-write": "1"})
        await self.runtime.create_node(data_node_spec(r.addon, r.first, None, r.operation, self._passwords(r)[0],
                                                      self.versions))
        if r.cluster.primary != r.first["id"]:
            r.cluster.change_primary(new=r.first["id"], reason=self.why(r))
        return StepResult(f"every Sentinel watches {r.first['container']} ({moved} restarted on a new file): HAProxy "
                          "sends clients to it, and it takes writes", changes=(r.cluster,))

    async def _pause_old_primary(self, r: Restoring) -> None:
        try:
            await self.redis.pause_writes(self._endpoint(r, r.old_primary), PAUSE_MS)
        except TransientError:
            pass  # it does not answer: it acknowledges no write either

    async def _point_sentinels(self, r: Restoring, primary: dict) -> int:
        """Each Sentinel that does not name `primary` is stopped, given a file watching it, and started, one
        at a time, each waited for until it names `primary`. One amid a failover is waited for: restarted,
        it would forget the failover half done."""
        moved = 0
        for sentinel in r.live("sentinel"):
            try:
                view = await self.redis.sentinel_view(self._sentinel(r, sentinel), MASTER_NAME)
            except TransientError:
                view = None  # stopped by an attempt that crashed before starting it again: rewritten and started
            if view is not None and view["primary"] == at(primary):
                continue
            if view is not None and view["failing_over"]:
                raise TransientError(f"Sentinel {sentinel['container']} is failing over: it is restarted once done")
            await self.runtime.stop_node(sentinel["host"], sentinel["container"], SENTINEL_STOP_S)
            password, sentinel_password = self._passwords(r)
            await self.runtime.create_node(sentinel_spec(r.addon, sentinel, primary, self.components.get("sentinel"),
                                                         r.operation, password, sentinel_password))
            await self.runtime.start_node(sentinel["host"], sentinel["container"])
            await self._until(lambda: self._names(r, sentinel, primary))
            moved += 1
        return moved

    async def _names(self, r: Restoring, sentinel: dict, primary: dict) -> None:
        view = await self.redis.sentinel_view(self._sentinel(r, sentinel), MASTER_NAME)
        if view["primary"] != at(primary):
            raise TransientError(f"Sentinel {sentinel['container']} names {view['primary']}, not {at(primary)}")

    @staticmethod
    async def _until(check) -> None:
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError),
                                           stop=stop_after_delay(SENTINEL_SEES_ALL_WITHIN_S),
                                           wait=wait_exponential(multiplier=0.1, max=1.0), reraise=True):
            with attempt:
                await check()

    async def _route(self, r: Restoring, data_nodes: list[dict]) -> None:
        password, sentinel_password = self._passwords(r)
        await route_proxies(self.runtime, self.components.get("haproxy"), r.addon, r.running("proxy"), data_nodes,
                            r.live("sentinel"), r.operation, password, sentinel_password)

    # -- the end -----------------------------------------------------------------------------------------

    async def cleanup(self, r: Restoring) -> StepResult:
        removed = await self._remove_old(r)
        sentinels = r.live("sentinel")
        for sentinel in sentinels:
            await self._until(lambda: knows_whole_cluster(self.redis, sentinel, self._passwords(r)[1], r.first,
                                                          sentinels=len(sentinels) - 1, replicas=1))
        return StepResult(f"old nodes removed: {removed or '(removed already)'}; every Sentinel sees the new pair",
                          changes=(r.cluster,))

    async def _remove_old(self, r: Restoring) -> str:
        """HAProxy forgets the old data nodes, then they go, with their volumes."""
        await self._route(r, [n for n in r.running("data") if n["id"] in ids(r.new)])
        gone = [n for n in r.old if n["state"] != "retired"]
        for node in gone:
            await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            r.cluster.retire_node(node["id"])
        return ", ".join(f"{n['container']} on {n['host']}" for n in gone)

    async def publish(self, r: Restoring) -> StepResult:
        self.mark_done(r)
        return StepResult(f"backup {r.operation.subject} restored on both data nodes; same REDIS_URL",
                          changes=(r.addon,))

    # What the addon records (an engine upgrade that stops writes moves its data the same way).
    def why(self, r: Restoring) -> str:
        return f"restore of backup {r.operation.subject}"

    def mark_done(self, r: Restoring) -> None:
        r.addon.mark_restored(operation_id=r.operation.id)

    def mark_failed(self, r: Restoring, error: str) -> None:
        r.addon.mark_restore_failed(operation_id=r.operation.id, reason=error)

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        r = await self._restoring(operation)
        if operation.past_point_of_no_return:  # the Sentinels watch the new pair: it serves the restored data
            removed = await self._remove_old(r)
            if r.addon.operation_id == operation.id:
                self.mark_done(r)
            return StepResult(f"the restored data serves the app; old nodes removed: {removed or 'none left'} "
                              f"({error})", changes=(r.addon, r.cluster))
        if "switch" in operation.steps_to_undo:
            await self._point_sentinels(r, r.old_primary)  # before the new nodes go: none is named then
        if any(n["state"] == "running" for n in r.new):  # HAProxy knew them
            await self._route(r, [n for n in r.running("data") if n["id"] not in ids(r.new)])
        for node in r.new:
            if node["state"] != "retired":
                await self.runtime.remove_node(node["host"], node["container"], node["volume"])
                r.cluster.retire_node(node["id"])
        if "switch" in operation.steps_to_undo:
            await self.redis.resume_writes(self._endpoint(r, r.old_primary))
        if r.addon.operation_id == operation.id:
            self.mark_failed(r, error)
        return StepResult("the cluster is as it was, with its data; new nodes removed", changes=(r.addon, r.cluster))


def _with_settings(addon: Addon, settings: dict) -> Addon:
    """The addon as a node's file reads it, with other settings (the aggregate itself is not changed)."""
    shown = copy.copy(addon)
    shown.settings = settings
    return shown
