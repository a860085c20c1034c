"""The node watcher: a data node whose container was removed, killed (Docker does not restart a
killed container) or crash-loops is seen within seconds, recorded as down on its Cluster (the
addon shows `down`), and brought back on its data — restarted, or its container made again on
the same volumes with its configuration written afresh — which is recorded too.

An addon with an unfinished operation is left to that operation (its saga stops and replaces
nodes on purpose; a plan change still cleans up its old node after the addon is free again). Facts recorded here go on the Cluster, never the Addon, so they never conflict with the
command that holds the addon.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain.addon import Addon
from domain.catalog import PlanCatalog, VersionCatalog
from domain.cluster import Cluster
from engine import audit
from engine.claims import AddonClaims
from engine.failover_follower import FailoverFollower
from engine.clusters import cluster_of
from engine.inventory import Inventory
from engine.nodes import endpoint, node_spec
from engine.ports import Certificates, EffectError, NodeState, ReadModels, RedisAdmin, Runtime, SecretStore, TransientError
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("watcher")

WATCHED = ("running", "down")  # addon rows (read model) whose nodes are looked at
READY_WITHIN_S = 15.0
SILENT_ROUNDS = 2  # rounds in a row a host's engine does not answer before its nodes are said down


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


def why_down(found: NodeState | None) -> str | None:
    """None when the container runs steadily; otherwise what a user should read."""
    if found is None:
        return "its container is gone"
    if found.state == "restarting":
        return f"its container crash-loops ({found.status or 'restarting'})"
    if not found.running:
        return f"its container does not run ({found.status or found.state or 'stopped'})"
    return None


class NodeWatcher:
    def __init__(self, events: EventLog, views: ReadModels, inventory: Inventory, claims: AddonClaims, runtime: Runtime,
                 redis: RedisAdmin, secrets: SecretStore, versions: VersionCatalog, certificates: Certificates,
                 interval_s: float, plans: PlanCatalog, healer=None, clock=utc_now):
        self.events, self.views, self.inventory, self.runtime, self.redis = events, views, inventory, runtime, redis
        self.plans = plans
        self.failovers = FailoverFollower(events, views, redis, secrets, plans)
        self.healer = healer  # Business clusters' self-healing (engine/cluster_healing.py)
        self.claims = claims
        self.secrets, self.versions, self.certificates = secrets, versions, certificates
        self.interval_s, self.clock = interval_s, clock
        self._task: asyncio.Task | None = None
        self._silent: dict[str, int] = {}  # host -> rounds in a row its engine did not answer
        self.on_host_back = lambda: None  # called when one answers again (the coordinator's retry_stuck)

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="node-watcher", context=audit.context_for(audit.ENGINE))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.failovers.stop()  # the Sentinels' subscriptions, which rounds (the watcher's or a test's) made

    async def _run(self) -> None:
        while True:
            # Failovers first: a primary the Sentinels replaced is then a node the healer may replace.
            for round_ in [self.look, self.failovers.look] + ([self.healer.look] if self.healer else []):
                try:
                    await round_()
                except Exception as error:  # Docker or a Sentinel unreachable for a moment: next round
                    log.warning("watching nodes failed this round", error=str(error) or type(error).__name__)
            await asyncio.sleep(self.interval_s)

    async def look(self) -> list[dict]:
        """One round over every idle addon's live data nodes; returns what was seen and done."""
        # A survey, not a list of every host's nodes: one host's engine down must not stop the round for the
        # others (it did: the whole round failed while any engine was away), nor say its nodes are gone.
        survey = await self.runtime.survey()
        if set(self._silent) - set(survey.silent):
            self.on_host_back()
        self._silent = {host: self._silent.get(host, 0) + 1 for host in survey.silent}
        found = {(n.host, n.container): n for n in survey.nodes}
        seen = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] not in WATCHED or self._held_by_an_operation(row["name"]):
                continue
            if self.plans.get(row["plan"]).is_cluster:
                continue  # Sentinel fails a cluster over; restarting its old primary is never this watcher's call
            cluster = await cluster_of(self.events, row["name"])
            # The primary only: a node beside it is an operation's (one being placed, or one replaced
            # and left for a cleanup), never one to bring back.
            node = cluster.primary_node
            if node is None or node["role"] != "data" or node["state"] not in ("running", "down"):
                continue
            if node["host"] in survey.silent:
                # A slow `docker ps` (past the survey's timeout) is not a host down: its nodes are said down
                # once it stays silent SILENT_ROUNDS rounds in a row. Nothing is tried on it: a call to an
                # engine that accepts and never answers would hang this loop, holding the addon's claim.
                if self._silent[node["host"]] >= SILENT_ROUNDS and node["state"] == "running":
                    seen.extend(await self._down_on_a_silent_host(row["name"], node))
                continue
            reason = why_down(found.get((node["host"], node["container"])))
            if reason is None and node["state"] == "running":
                continue
            async with self.claims.claim(row["name"]):  # no operation starts on it while the watcher acts
                if self._held_by_an_operation(row["name"]):
                    continue
                addon: Addon = await self.events.get(Addon.id_for(row["name"]))
                try:
                    seen.append(await self._heal(addon, await cluster_of(self.events, addon.name), node, reason))
                except IntegrityError:  # recorded meanwhile by another writer: looked at again next round
                    continue
                except Exception:  # one addon's surprise (a node on a host no longer listed) must not starve the rest
                    log.exception("watching an addon failed; the others are looked after, it again next round",
                                  addon=row["name"])
        return seen

    async def _down_on_a_silent_host(self, name: str, node: dict) -> list[dict]:
        """The node recorded down (the addon shows it), nothing tried on it: it is brought back once its
        host answers again."""
        reason = f"its host {node['host']} does not answer"
        async with self.claims.claim(name):
            if self._held_by_an_operation(name):
                return []
            cluster = await cluster_of(self.events, name)
            cluster.mark_node_down(node["id"], reason, self.clock())
            try:
                await self.events.save(cluster)
            except IntegrityError:  # recorded meanwhile by another writer: looked at again next round
                return []
        log.warning("node down", addon=name, node=node["id"], host=node["host"], reason=reason)
        return [{"addon": name, "node": node["id"], "down": reason, "recovered": None}]

    def _held_by_an_operation(self, addon: str) -> bool:
        return addon in self.inventory.unfinished.values()

    async def _heal(self, addon: Addon, cluster: Cluster, node: dict, reason: str | None) -> dict:
        bound = log.bind(addon=addon.name, node=node["id"], host=node["host"])
        if reason is not None and node["state"] != "down":  # said once, not at each round it stays down
            cluster.mark_node_down(node["id"], reason, self.clock())
            await self.events.save(cluster)  # seen before anything is tried: the addon shows down
            bound.warning("node down", reason=reason)
        try:
            how = await self._bring_back(addon, node, reason)
        except (TransientError, EffectError) as error:
            bound.warning("node could not be brought back yet; tried again next round", error=str(error))
            return {"addon": addon.name, "node": node["id"], "down": reason, "recovered": None}
        cluster = await cluster_of(self.events, addon.name)
        cluster.mark_node_recovered(node["id"], how, self.clock())
        await self.events.save(cluster)
        bound.info("node recovered", how=how)
        return {"addon": addon.name, "node": node["id"], "down": reason, "recovered": how}

    async def _bring_back(self, addon: Addon, node: dict, reason: str | None) -> str:
        """Started again on its data; a container that is gone or crash-loops is made again on the same
        volumes, its configuration and certificate written afresh from what the engine recorded."""
        host, container = node["host"], node["container"]
        password = self.secrets.password_for(addon.name)
        running = await self.runtime.is_running(host, container)
        how = "it answered again by itself"
        if reason and ("gone" in reason or "crash-loops" in reason):
            await self.runtime.remove_node(host, container, None)  # the container only: its volumes stay
            await self.runtime.create_node(self._spec(addon, node, password))
            await self.runtime.start_node(host, container)
            how = "its container made again on its volumes and started"
        elif running is False:
            await self.runtime.start_node(host, container)
            how = "restarted on its data"
        await self._answers(endpoint(node, password), host, container)
        return how

    async def _answers(self, node, host: str, container: str) -> None:
        """A server that was just started loads its data first: give it READY_WITHIN_S to answer, unless
        its container crash-loops (its port taken, say), which waiting would not mend: the round, which
        waits here for every other addon too, goes on, and the node is tried again next round."""
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError), stop=stop_after_delay(READY_WITHIN_S),
                                           wait=wait_exponential(multiplier=0.02, max=0.5), reraise=True):
            with attempt:
                try:
                    await self.redis.ping(node)
                except TransientError:
                    if await self.runtime.is_running(host, container, steadily=True) is False:
                        raise EffectError(f"its container {container} does not start: it exits as it starts") from None
                    raise

    def _spec(self, addon: Addon, node: dict, password: str):
        # Labels name the operation that made a container; one the watcher makes again says so.
        return node_spec(addon, node, "watcher", password, self.versions, self.certificates)
