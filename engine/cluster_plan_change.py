"""A Business addon's plan change, as a saga, with no downtime (reference, "Changing Plans"; the
entry address does not change, so neither does the app's environment, and the app is not restarted).

The data nodes are replaced one at a time by nodes with the new plan's memory, so at most one extra
data node exists at a time (the hosts need room for one more node, not a second cluster):

add_first       a new node (the "first") is made a replica of the primary, beside the old replica
sync_first      it is in sync: the Sentinels may elect it, the HAProxy may route to it
retire_replica  the old replica is removed; HAProxy forgets it
add_second      a second new node, a replica of the primary, beside the first
sync_second     it is in sync, electable and routable like the first
switch          writes paused on the old primary until both new nodes have all of its data, then
                SENTINEL FAILOVER elects one of them, then writes resume: what the old primary
                acknowledged, the new one has (engine/primary_switch.py)
retire_primary  the old primary (a replica now) is removed; HAProxy forgets it, and the Sentinels
                both old nodes
publish         the addon is on its new plan

A failure before `retire_replica` removes the new nodes and leaves the addon as it was. From there
on the old replica is gone, so nothing is undone: the first new node stays the replica (the second is
removed), or, once the Sentinels named a new node, it stays the primary; the addon stays on its plan,
and the change can be asked again. A node the Sentinels name is never removed.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.cluster_config import QUORUM
from domain.operation import Operation
from engine.cluster_nodes import data_node_spec, entry_endpoint
from engine.cluster_provisioning import sentinel_secret
from engine.cluster_rewiring import reset_sentinels, route_proxies
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import Certificates, EffectError, Endpoint, RedisAdmin, Runtime, SecretStore, TransientError
from engine.primary_switch import PrimarySwitch, at
from engine.saga import StepResult
from engine.store import EventLog


class Move:
    """What a plan change works on: the addon, its cluster, the nodes it made and those they replace."""

    def __init__(self, addon: Addon, cluster: Cluster, operation: Operation):
        self.addon, self.cluster = addon, cluster
        mine = {n["replaces"]: n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)}
        self.first = next(n for old, n in mine.items() if old != operation.subject)
        self.second = mine[operation.subject]  # the subject: the primary when the change was asked
        self.old_replica = cluster.node(self.first["replaces"])
        self.old_primary = cluster.node(self.second["replaces"])

    def live(self, role: str) -> list[dict]:
        return [n for n in self.cluster.live_nodes if n["role"] == role]

    def running(self, role: str) -> list[dict]:
        """The nodes of `role` that are the cluster's now (a new node from when it is in sync)."""
        return [n for n in self.live(role) if n["state"] == "running"]


class ClusterPlanChange:
    kind = "change_cluster_plan"
    deadlines = {"sync_first": 900.0, "sync_second": 900.0, "retire_replica": 180.0, "retire_primary": 180.0}

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, components: ComponentCatalog, certificates: Certificates | None = None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.components = versions, components
        self.certificates = certificates  # a node joining a cluster that serves TLS gets its certificate

    async def _move(self, operation: Operation) -> Move:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return Move(addon, await cluster_of(self.events, addon.name), operation)

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        return await getattr(self, step)(await self._move(operation), operation)

    def _passwords(self, addon: Addon) -> tuple[str, str]:
        return self.secrets.password_for(addon.name), self.secrets.password_for(sentinel_secret(addon.name))

    def _endpoint(self, m: Move, node: dict) -> Endpoint:
        return endpoint(node, self._passwords(m.addon)[0])

    # -- a new node joins ---------------------------------------------------------------------

    async def _add(self, m: Move, node: dict, operation) -> StepResult:
        if not await self.runtime.is_running(node["host"], node["container"]):
            password, _ = self._passwords(m.addon)
            # Not electable until in sync: the Sentinels must never elect a node without the data.
            await self.runtime.create_node(data_node_spec(m.addon, node, m.old_primary, operation, password, self.versions,
                                                          promotable=False, certificates=self.certificates))
            await self.runtime.start_node(node["host"], node["container"])
        return StepResult(f"{node['container']} ({node['memory_mib']} MiB) started on {node['host']} at {at(node)}, "
                          f"a replica of {m.old_primary['container']}")

    async def _sync(self, m: Move, node: dict, operation) -> StepResult:
        info = await self.redis.replication(self._endpoint(m, m.old_primary))
        link = next((v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                     and f"{v.get('ip')}:{v.get('port')}" == at(node)), None)
        if link is None or link.get("state") != "online":
            raise TransientError(f"{node['container']} is not in sync with the primary yet ({link or 'not connected'})")
        await self.redis.configure(self._endpoint(m, node), {"replica-priority": "100"})
        # A Sentinel reads a replica's priority every 10 s: until a majority has, it would not elect it. Asked to
        # read every second, they see it within one (a Sentinel that does not answer is simply not counted).
        for sentinel in m.running("sentinel"):
            try:
                await self.redis.sentinel_reads_often(endpoint(sentinel, self._passwords(m.addon)[1]))
            except (TransientError, EffectError):
                pass
        if len(await self._sentinels_seeing(m, lambda view: at(node) in view["replicas_electable"])) < QUORUM:
            raise TransientError(f"the Sentinels do not see {node['container']} as electable yet")
        m.cluster.mark_node_started(node["id"])
        password, sentinel_password = self._passwords(m.addon)
        await route_proxies(self.runtime, self.components.get("haproxy"), m.addon, m.running("proxy"), m.running("data"),
                            m.live("sentinel"), operation, password, sentinel_password)
        return StepResult(f"{node['container']} in sync at offset {link.get('offset')}: electable, and known to HAProxy",
                          changes=(m.cluster,))

    async def _retire(self, m: Move, old: dict, primary: dict, operation, forget: bool) -> StepResult:
        """`old` removed, once HAProxy no longer routes to it; then, `forget`, each Sentinel forgets it
        and every node retired before it (one reset per Sentinel: each takes ~10 s to find the replicas
        again from the primary's INFO, while the other two, a majority, still know them)."""
        password, sentinel_password = self._passwords(m.addon)
        # A Sentinel still naming the old primary learns the new one from the others' hello messages on
        # the nodes it knows; reset before that, it would know only a node about to go, and stay lost.
        # One amid the failover names the promoted node already, but forgets the failover if reset.
        sentinels = m.running("sentinel")
        named = await self._sentinels_seeing(m, lambda view: "failing over" if view["failing_over"] else view["primary"])
        if named != [at(primary)] * len(sentinels):
            raise TransientError(f"not every Sentinel names {primary['container']} and is done failing over yet ({named})")
        staying = [n for n in m.running("data") if n["id"] != old["id"]]
        await route_proxies(self.runtime, self.components.get("haproxy"), m.addon, m.running("proxy"), staying,
                            m.live("sentinel"), operation, password, sentinel_password)
        await self.runtime.remove_node(old["host"], old["container"], old["volume"])
        m.cluster.retire_node(old["id"])
        if not forget:
            return StepResult(f"{old['container']} removed from {old['host']}; HAProxy forgot it (the Sentinels list "
                              "it down, which elects nothing, until the old primary goes too)", changes=(m.cluster,))
        await reset_sentinels(self.redis, sentinels, sentinel_password, primary, others_seen=len(sentinels) - 1,
                              replicas=len(staying) - 1)
        return StepResult(f"{old['container']} removed from {old['host']}; HAProxy and the Sentinels forgot it and "
                          "the old replica", changes=(m.cluster,))

    async def add_first(self, m: Move, operation) -> StepResult:
        return await self._add(m, m.first, operation)

    async def sync_first(self, m: Move, operation) -> StepResult:
        return await self._sync(m, m.first, operation)

    async def retire_replica(self, m: Move, operation) -> StepResult:
        return await self._retire(m, m.old_replica, m.old_primary, operation, forget=False)

    async def add_second(self, m: Move, operation) -> StepResult:
        return await self._add(m, m.second, operation)

    async def sync_second(self, m: Move, operation) -> StepResult:
        return await self._sync(m, m.second, operation)

    # -- the switch ---------------------------------------------------------------------------

    def _switching(self, m: Move) -> PrimarySwitch:
        password, sentinel_password = self._passwords(m.addon)
        return PrimarySwitch(self.redis, m.live("sentinel"), m.running("sentinel"),
                             entry_endpoint(m.addon, password), password, sentinel_password)

    async def switch(self, m: Move, operation) -> StepResult:
        new = (m.first, m.second)
        elected, detail = await self._switching(m).switch(m.old_primary, new, in_sync=new)
        if m.cluster.primary != elected["id"]:
            m.cluster.change_primary(new=elected["id"], reason=self.why(m))
        return StepResult(f"{elected['container']} is the primary{detail}", changes=(m.cluster,))

    def why(self, m: Move) -> str:
        """The reason the cluster records for the switch of its primary."""
        return f"plan change to {m.addon.target['plan']}"

    async def _sentinels_seeing(self, m: Move, what) -> list:
        return await self._switching(m).seeing(what)

    # -- the end ------------------------------------------------------------------------------

    async def retire_primary(self, m: Move, operation) -> StepResult:
        return await self._retire(m, m.old_primary, m.cluster.primary_node, operation, forget=True)

    async def publish(self, m: Move, operation) -> StepResult:
        plan = m.addon.target["plan"]
        m.addon.mark_plan_changed(operation_id=operation.id)
        return StepResult(f"now {plan}: REDIS_URL and SCALINGO_REDIS_URL unchanged (the entry address), "
                          "so the app is not restarted", changes=(m.addon,))

    def mark_failed(self, addon: Addon, operation: Operation, error: str) -> None:
        addon.mark_plan_change_failed(operation_id=operation.id, reason=error)

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        m = await self._move(operation)
        switching = self._switching(m)
        # Amid a failover (to a new node, maybe) a majority does not name it yet: removing it then would
        # remove the node about to hold the data. Retried until the Sentinels are done.
        if "failing over" in await switching.seeing(lambda view: "failing over" if view["failing_over"] else None):
            raise TransientError("a Sentinel is failing over: the new nodes are kept until it is done")
        elected = await switching.elected_one_of((m.first, m.second))  # never removed: it holds the data now
        if elected is not None and m.cluster.primary != elected["id"]:
            m.cluster.change_primary(new=elected["id"], reason=self.why(m))
        if not operation.past_point_of_no_return:
            extra, detail = [m.first, m.second], "back as it was"
        elif elected is None:  # the old replica is gone: the first new node, in sync, is the replica now
            extra, detail = [m.second] + ([m.first] if m.first["state"] == "placed" else []), \
                "the first new node stays the replica (the old one is gone)"
        else:
            extra, detail = [n for n in (m.first, m.second) if n["state"] == "placed"], \
                f"{elected['container']} stays the primary"
        extra = [n for n in extra if n["state"] in ("placed", "running") and n is not elected]
        for node in extra:
            await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            m.cluster.retire_node(node["id"])
        if extra:
            password, sentinel_password = self._passwords(m.addon)
            await route_proxies(self.runtime, self.components.get("haproxy"), m.addon, m.running("proxy"),
                                m.running("data"), m.live("sentinel"), operation, password, sentinel_password)
        if m.addon.operation_id == operation.id:
            self.mark_failed(m.addon, operation, error)
        removed = ", ".join(n["container"] for n in extra) or "none"
        return StepResult(f"{detail}; new nodes removed: {removed}", changes=(m.addon, m.cluster))
