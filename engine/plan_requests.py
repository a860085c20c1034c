"""Asking for a plan change (reference, "Changing Plans": the same command upgrades and downgrades).

A single node moves to a new host with the new plan's memory (engine/plan_change.py). A Business
cluster's data nodes are replaced one at a time with no downtime (engine/cluster_plan_change.py):
the first new node goes where the old replica is (they live side by side until the old replica is
removed), the second where the old primary is, so each host needs room for one more node only.
Between a single node and a Business cluster, both ways, the new nodes replicate the old primary and
the app is restarted onto its new URL before the primary switches (engine/kind_change*.py).
"""

from __future__ import annotations

import structlog

from domain.addon import Addon
from domain.catalog import Plan, PlanCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.errors import NoHostWithRoom, PlanNotAvailable
from domain.operation import Operation
from domain.placement import Placement
from engine.addon_lookup import AddonLookup
from engine.cluster_forming import business_requests, replacement_node
from engine.clusters import cluster_of, data_node, redundant_pair, serving_node
from engine.nodes import endpoint
from engine.kind_change import new_cluster_nodes
from engine.operations import OperationStarter
from engine.placing import Placer, Placing
from engine.ports import RedisAdmin, SecretStore
from engine.store import EventLog

log = structlog.get_logger("engine")


class PlanRequests:
    def __init__(self, events: EventLog, lookup: AddonLookup, plans: PlanCatalog, versions: VersionCatalog,
                 redis: RedisAdmin, secrets: SecretStore, placing: Placing, starter: OperationStarter):
        self.events, self.lookup, self.plans, self.versions = events, lookup, plans, versions
        self.redis, self.secrets, self.placing, self.starter = redis, secrets, placing, starter

    async def change(self, app: str, addon: str, plan_id: str) -> dict:
        plan = self.plans.provisionable(plan_id)
        current = await self.lookup.of(app, addon)
        current.check_can_change_to(plan)
        if plan.is_cluster != self.plans.get(current.plan).is_cluster:
            if current.settings.get("force_tls"):
                kind = "Business plan" if plan.is_cluster else "single-node plan"
                raise PlanNotAvailable(f"addon {current.name} forces TLS connections, and the entry would have to "
                                       "bind TLS only for the whole change: turn force TLS off first, then "
                                       f"move it onto {kind} {plan.id}")
            operation = await (self._to_business if plan.is_cluster else self._to_starter)(current, plan)
        else:
            operation = await (self._move_cluster if plan.is_cluster else self._move_node)(current, plan)
        log.info("plan change requested", addon=current.name, app=app, plan=plan.id, operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id)}

    async def _move_node(self, current: Addon, plan: Plan) -> Operation:
        """Reference: "the database is stopped, then restarted on a new host with the new plan's parameters"."""
        cluster = await cluster_of(self.events, current.name)
        serving = serving_node(cluster)
        used = await self.redis.used_memory(endpoint(serving, self.secrets.password_for(current.name)))
        async with self.placing.held() as placer:
            where = placer.node(plan.memory_mib, tls=self.versions.get(current.redis_version).tls,
                                exclude_host=serving["host"])  # "restarted on a new host"
            operation = Operation(kind="change_plan", addon=current.name, app=current.app)
            node = f"redis-addons-{current.name}-{operation.id.hex[:8]}"
            current.request_plan_change(plan, where, node, f"{node}-data", operation.id, used)
            cluster.place_node(data_node(current, current.target, operation.id))
            position = await self.starter.record(operation, current, cluster)
        await self.starter.caught_up(position)
        return operation

    async def _move_cluster(self, current: Addon, plan: Plan) -> Operation:
        cluster = await cluster_of(self.events, current.name)
        primary, replica = redundant_pair(cluster, current.name, "its plan can change")
        used = await self.redis.used_memory(endpoint(primary, self.secrets.password_for(current.name)))
        async with self.placing.held() as placer:
            operation = Operation(kind="change_cluster_plan", addon=current.name, app=current.app, subject=primary["id"])
            new = place_replacements(placer, current, cluster, (primary, replica), operation, plan.memory_mib)
            # The addon's node is the first new one; its address (and TLS port) stays the entry's, which does not change.
            entry = Placement(new[0]["host"], current.address, current.port, current.tls_port)
            current.request_plan_change(plan, entry, new[0]["container"], new[0]["volume"], operation.id, used)
            position = await self.starter.record(operation, current, cluster)
        await self.starter.caught_up(position)
        return operation


    async def _to_business(self, current: Addon, plan: Plan) -> Operation:
        """Reference, "Changing Plans", onto a Business plan: a cluster placed as a provisioning places one,
        its data nodes made replicas of the addon's node (engine/kind_change_to_business.py)."""
        cluster = await cluster_of(self.events, current.name)
        serving = serving_node(cluster)
        used = await self.redis.used_memory(endpoint(serving, self.secrets.password_for(current.name)))
        # Its nodes serve TLS only, as a provisioning makes them, where the node they replicate serves TLS.
        tls = self.versions.get(current.redis_version).tls and serving.get("tls_port") is not None
        async with self.placing.held() as placer:
            requests = business_requests(plan, tls)
            placed = placer.nodes(requests)
            operation = Operation(kind="change_to_business", addon=current.name, app=current.app, subject=serving["id"])
            nodes = new_cluster_nodes(current.name, plan.memory_mib, current.redis_version, requests, placed, operation,
                                      tls)
            first, entry = nodes[0], next(i for i, n in enumerate(nodes) if n["role"] == "proxy")
            where = Placement(first["host"], nodes[entry]["address"], nodes[entry]["port"], placed[entry].tls_port)
            current.request_plan_change(plan, where, first["container"], first["volume"], operation.id, used)
            for node in nodes:
                cluster.place_node(node)
            position = await self.starter.record(operation, current, cluster)
        await self.starter.caught_up(position)
        return operation

    async def _to_starter(self, current: Addon, plan: Plan) -> Operation:
        """Reference, "Changing Plans", onto a single-node plan: one node, made a replica of the primary,
        then the primary (engine/kind_change_to_starter.py)."""
        cluster = await cluster_of(self.events, current.name)
        primary, _ = redundant_pair(cluster, current.name, "its plan can change")
        used = await self.redis.used_memory(endpoint(primary, self.secrets.password_for(current.name)))
        async with self.placing.held() as placer:
            where = placer.node(plan.memory_mib, tls=self.versions.get(current.redis_version).tls)
            operation = Operation(kind="change_to_starter", addon=current.name, app=current.app, subject=primary["id"])
            node = f"redis-addons-{current.name}-{operation.id.hex[:8]}"
            current.request_plan_change(plan, where, node, f"{node}-data", operation.id, used)
            cluster.place_node(data_node(current, current.target, operation.id))
            position = await self.starter.record(operation, current, cluster)
        await self.starter.caught_up(position)
        return operation


def place_replacements(placer: Placer, addon: Addon, cluster: Cluster, pair: tuple[dict, dict], operation: Operation,
                       memory_mib: int, version: str | None = None) -> list[dict]:
    """The two data nodes that replace a cluster's (primary, replica) one at a time (a plan change, an upgrade):
    the first beside the old replica, the second where the old primary is, so each host needs room for one
    more node only. Placed in the cluster; returned first, second."""
    primary, replica = pair
    first = beside(placer, memory_mib, replica["host"], avoid={primary["host"]: "holds the primary"})
    second = beside(placer, memory_mib, primary["host"], avoid={first.host: "takes the first new node"})
    new = []
    for old, where in ((replica, first), (primary, second)):  # one at a time: a node's name counts the others
        new.append(replacement_node(addon, cluster, old, where, operation, memory_mib=memory_mib, version=version))
        cluster.place_node(new[-1])
    return new


def beside(placer: Placer, memory_mib: int, preferred: str, avoid: dict[str, str]) -> Placement:
    """A data node of `memory_mib` on the `preferred` host when it has room, else on any other not avoided."""
    try:
        others = {h: "not the preferred host" for h in placer.host_names if h != preferred}
        return placer.replacement("data", memory_mib, avoid={**others, **avoid})
    except NoHostWithRoom:
        return placer.replacement("data", memory_mib, avoid=avoid)
