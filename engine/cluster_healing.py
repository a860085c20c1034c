"""Self-healing of Business clusters, one watcher round at a time.

Each node of each idle cluster is looked at:
- it runs: a node recorded down is recorded recovered;
- its container was killed or stopped: it is started again on its data (a former primary comes back
  as it was, and the Sentinels make it a replica of the new primary; HAProxy sends it nothing meanwhile,
  since no Sentinel names it). The primary itself is left to the Sentinels to fail over first: started
  again before that, it would come back with the data of its last save and the replica would
  resynchronise from it, losing what was written since. Only when no replica runs (none to
  promote) is it started again on its data;
- its container is gone or crash-loops, or its host has not answered for the grace period: it is
  recorded down and replaced (engine/node_replacement.py), on a host with room that holds no other
  node of its group; with no such host the cluster runs degraded, says why, and is looked at again
  each round, so it heals when a host comes back;
- a node left behind on a silent host is removed once the host answers again;
- a Sentinel that still counts a node the cluster no longer has is reset.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import structlog

from domain.addon import Addon
from domain.catalog import PlanCatalog, VersionCatalog
from domain.cluster_config import MASTER_NAME
from domain.errors import AddonBusy, DomainError, NoHostWithRoom
from domain.operation import Operation
from engine.claims import AddonClaims
from engine.cluster_forming import replacement_node
from engine.cluster_nodes import data_node_spec
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of
from engine.inventory import Inventory
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.nodes import endpoint as node_endpoint
from engine.ports import EffectError, ReadModels, RedisAdmin, Runtime, SecretStore, Survey, TransientError
from engine.store import EventLog, IntegrityError
from engine.watcher import why_down

log = structlog.get_logger("healing")

RETRY_REPLACEMENT_AFTER_S = 30.0  # a replacement that failed is tried again after this long


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ClusterHealer:
    def __init__(self, events: EventLog, views: ReadModels, inventory: Inventory, claims: AddonClaims, runtime: Runtime,
                 redis: RedisAdmin, secrets: SecretStore, placing: Placing, starter: OperationStarter, plans: PlanCatalog,
                 grace_s: float, versions: VersionCatalog, clock=time.monotonic):
        self.events, self.views, self.inventory, self.claims, self.runtime = events, views, inventory, claims, runtime
        self.redis, self.secrets, self.versions = redis, secrets, versions
        self.placing, self.starter, self.plans, self.grace_s, self.clock = placing, starter, plans, grace_s, clock
        self._silent_since: dict[str, float] = {}  # host -> when it was first seen silent
        self._tried: dict[str, float] = {}  # lost node -> when a replacement was last started for it

    async def look(self) -> list[dict]:
        """One round over every idle Business cluster; returns what was seen and done."""
        survey = await self.runtime.survey()
        now = self.clock()
        self._silent_since = {h: self._silent_since.get(h, now) for h in survey.silent}
        found = {(n.host, n.container): n for n in survey.nodes}
        done = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] not in ("running", "degraded", "down") or not self.plans.get(row["plan"]).is_cluster:
                continue
            try:
                lost = await self._look_after(row["name"], survey, found, done)
                for node in lost:  # one replacement at a time: the first that can be placed starts
                    done.append(outcome := await self._replace(row["name"], node, survey))
                    if outcome["replacing"]:
                        break
                if lost:
                    continue
                if not self._held(row["name"]) and (reset := await self._forget_the_gone(row["name"])):
                    done.append(reset)
            except IntegrityError:  # recorded meanwhile by another writer: looked at again next round
                continue
        return done

    def _held(self, addon: str) -> bool:
        return addon in self.inventory.unfinished.values()

    async def _look_after(self, addon: str, survey: Survey, found: dict, done: list) -> list[dict]:
        """Record what is seen of the cluster's nodes, start again those that only stopped, remove
        what was left behind; return the lost nodes to replace."""
        async with self.claims.claim(addon):
            if self._held(addon):
                return []
            cluster = await cluster_of(self.events, addon)
            await self._remove_left_behind(cluster, survey, done)
            lost = []
            for node in [n for n in cluster.live_nodes if n["state"] != "placed"]:
                if node["host"] in survey.silent:
                    cluster.mark_node_down(node["id"], f"its host {node['host']} does not answer", utc_now())
                    if self.clock() - self._silent_since[node["host"]] >= self.grace_s:
                        lost.append(node)
                    continue
                reason = why_down(found.get((node["host"], node["container"])))
                if reason is None:
                    cluster.mark_node_recovered(node["id"], "it runs again", utc_now())
                elif "gone" in reason or "crash-loops" in reason:
                    cluster.mark_node_down(node["id"], reason, utc_now())
                    lost.append(node)
                else:
                    cluster.mark_node_down(node["id"], reason, utc_now())
                    await self._start_again(cluster, node, found, done)
            if cluster.pending_events:
                await self.events.save(cluster)
        # The primary is the Sentinels' to fail over; a replacement is placed beside it.
        return [n for n in lost if n["id"] != cluster.primary]

    async def _start_again(self, cluster, node: dict, found: dict, done: list) -> None:
        if node["id"] == cluster.primary and any(
                n["role"] == "data" and n["id"] != node["id"] and why_down(found.get((n["host"], n["container"]))) is None
                for n in cluster.live_nodes):
            return  # a replica runs: the Sentinels fail the primary over first, however long they take
        try:
            if node["role"] == "data" and node["id"] != cluster.primary and cluster.primary_node is not None:
                await self._as_a_replica(cluster, node)
            await self.runtime.start_node(node["host"], node["container"])
        except (TransientError, EffectError) as error:
            log.warning("node could not be started again yet", addon=cluster.addon, node=node["id"], error=str(error))
            return
        log.info("node started again on its data", addon=cluster.addon, node=node["id"], role=node["role"])
        done.append({"addon": cluster.addon, "node": node["id"], "started_again": True})

    async def _as_a_replica(self, cluster, node: dict) -> None:
        """A former primary comes back as a replica of the current one, not as a master holding its
        last save, and not promotable until it is in sync (the follower raises it then): otherwise a
        moment's stall of the new primary would make the Sentinels elect it, and the new primary
        would resynchronise from it, losing every write since that save (bench/failover.py saw it)."""
        addon: Addon = await self.events.get(Addon.id_for(cluster.addon))
        await self.runtime.create_node(data_node_spec(addon, node, cluster.primary_node, "watcher",
                                                      self.secrets.password_for(addon.name), self.versions,
                                                      promotable=False))

    async def _remove_left_behind(self, cluster, survey: Survey, done: list) -> None:
        for node in cluster.left_behind:
            if node["host"] in survey.silent:
                continue
            try:
                await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            except (TransientError, EffectError):
                continue
            cluster.retire_node(node["id"])
            done.append({"addon": cluster.addon, "node": node["id"], "removed": "left behind"})

    async def _forget_the_gone(self, addon: str) -> dict | None:
        """A Sentinel still counting a node the cluster no longer has (a replacement that failed after
        rewiring, an engine that died in between) is reset, one per round: a dead Sentinel counted
        raises the majority a failover needs."""
        cluster = await cluster_of(self.events, addon)
        sentinels = [n for n in cluster.live_nodes if n["role"] == "sentinel"]
        replicas = len([n for n in cluster.live_nodes if n["role"] == "data"]) - 1
        password = self.secrets.password_for(sentinel_secret(addon))
        for node in [n for n in sentinels if n["state"] == "running"]:
            endpoint = node_endpoint(node, password)
            try:
                view = await self.redis.sentinel_view(endpoint, MASTER_NAME)
                if view["failing_over"] or (view["sentinels"] <= len(sentinels) - 1 and view["replicas"] <= replicas):
                    continue  # reset amid a failover, it would forget it and keep the old primary's address
                await self.redis.sentinel_reset(endpoint, MASTER_NAME)
            except (TransientError, EffectError):
                continue
            log.warning("Sentinel reset: it counted nodes the cluster no longer has", addon=addon, node=node["id"],
                        sentinels=view["sentinels"], replicas=view["replicas"])
            return {"addon": addon, "node": node["id"], "reset": True}
        return None

    async def _replace(self, name: str, lost: dict, survey: Survey) -> dict:
        if self.clock() - self._tried.get(lost["id"], float("-inf")) < RETRY_REPLACEMENT_AFTER_S:
            return {"addon": name, "node": lost["id"], "replacing": None}
        addon: Addon = await self.events.get(Addon.id_for(name))
        cluster = await cluster_of(self.events, name)
        avoid = {host: "does not answer" for host in survey.silent}
        for node in cluster.live_nodes:
            if node["role"] == lost["role"] and node["id"] != lost["id"]:
                avoid.setdefault(node["host"], f"holds {node['container']}")
        async with self.placing.held() as placer:
            try:
                where = placer.replacement(lost["role"], lost["memory_mib"], avoid)
            except NoHostWithRoom as error:
                cluster.wait_for_replacement(lost["id"], str(error), utc_now())
                if cluster.pending_events:
                    await self.events.save(cluster)
                    log.warning("lost node cannot be replaced yet", addon=name, node=lost["id"], reason=str(error))
                return {"addon": name, "node": lost["id"], "replacing": None, "waiting": str(error)}
            operation = Operation(kind="replace_node", addon=name, app=addon.app, subject=lost["id"])
            try:
                addon.start_node_replacement(operation.id)
            except DomainError:  # an operation took it meanwhile
                return {"addon": name, "node": lost["id"], "replacing": None}
            # A replica may be newer than its primary, never older: a data node lost from a cluster left half-way
            # through an upgrade comes back on the primary's build (a major step's replica could never sync).
            primary = cluster.primary_node
            version = primary["version"] if lost["role"] == "data" and primary is not None else None
            cluster.place_node(replacement_node(addon, cluster, lost, where, operation, version=version))
            try:
                await self.starter.record(operation, addon, cluster)
            except AddonBusy:  # a fact of its nodes (a Sentinel's word) recorded meanwhile: the next round decides
                return {"addon": name, "node": lost["id"], "replacing": None}
            self._tried[lost["id"]] = self.clock()
        log.warning("replacing a lost node", addon=name, node=lost["id"], host=where.host, operation_id=str(operation.id))
        return {"addon": name, "node": lost["id"], "replacing": str(operation.id), "host": where.host}
