"""Self-healing, as a saga: a Business cluster's node that is lost (its container gone, crash-looping,
or its host silent past the grace period) is replaced by a new one, placed by the watcher with the
spread of its group (engine/cluster_healing.py).

create          the new node's container, volumes and configuration (a data node as a replica of
                the primary; a Sentinel watching the primary; an HAProxy routing to the nodes)
start           it is started
wait_ready      a data node is in sync with the primary; a Sentinel names the primary and sees the
                others up; an HAProxy runs
rewire_proxies  each other HAProxy gets its configuration with the new node in place of the lost
                one, and reloads it (SIGUSR2: new sessions follow it, open ones go on)
reset_sentinels each other Sentinel forgets the lost node (SENTINEL RESET: a dead Sentinel would
                still count toward the majority a failover needs), one at a time, each waited for
                until it sees the whole cluster again
record          the new node is one of the cluster's running nodes
retire          the lost node's container and volumes removed; left behind, to remove when its host
                answers again, if that host is silent
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.operation import Operation
from engine.cluster_nodes import address, data_node_spec, proxy_spec, sentinel_spec
from engine.cluster_provisioning import knows_whole_cluster, sentinel_secret
from engine.cluster_rewiring import reset_sentinels, route_proxies
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import Certificates, EffectError, RedisAdmin, Runtime, SecretStore, TransientError
from engine.saga import StepResult
from engine.store import EventLog

class Replacing:
    """What a replacement works on: the addon, its cluster, the new node and the lost one."""

    def __init__(self, addon: Addon, cluster: Cluster, new: dict):
        self.addon, self.cluster, self.new = addon, cluster, new
        self.lost = cluster.node(new["replaces"])

    def members(self, role: str) -> list[dict]:
        """The nodes of `role` the cluster counts on: its live ones but the lost one (the new one in)."""
        return [n for n in self.cluster.live_nodes if n["role"] == role and n["id"] != self.lost["id"]]

    def others(self, role: str) -> list[dict]:
        """The running nodes of `role` beside the new one."""
        return [n for n in self.members(role) if n["id"] != self.new["id"] and n["state"] == "running"]

    @property
    def replicas(self) -> list[dict]:
        """The data nodes a Sentinel should see up beside the primary: the running ones, the new one."""
        return [n for n in self.members("data") if n["id"] != self.primary["id"]
                and (n["state"] == "running" or n["id"] == self.new["id"])]

    @property
    def primary(self) -> dict:
        primary = self.cluster.primary_node
        if primary is None or primary["state"] != "running":
            raise TransientError(f"addon {self.addon.name} has no running primary to replace a node beside")
        return primary


class NodeReplacement:
    kind = "replace_node"
    deadlines = {"wait_ready": 600.0, "reset_sentinels": 180.0}

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, components: ComponentCatalog, certificates: Certificates | None = None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.components = versions, components
        self.certificates = certificates  # a node joining a cluster that serves TLS gets its certificate

    async def _replacing(self, operation: Operation) -> Replacing:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        cluster = await cluster_of(self.events, addon.name)
        new = next((n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)), None)
        if new is None:
            raise EffectError(f"operation {operation.id} placed no node in the cluster of addon {addon.name}")
        return Replacing(addon, cluster, new)

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        return await getattr(self, step)(await self._replacing(operation), operation)

    def _passwords(self, addon: Addon) -> tuple[str, str]:
        return self.secrets.password_for(addon.name), self.secrets.password_for(sentinel_secret(addon.name))

    def _spec(self, r: Replacing, node: dict, operation):
        password, sentinel_password = self._passwords(r.addon)
        if node["role"] == "data":
            # Not promotable until in sync: the Sentinels must never elect a node without the data.
            return data_node_spec(r.addon, node, r.primary, operation, password, self.versions, promotable=False,
                                  certificates=self.certificates)
        if node["role"] == "sentinel":
            return sentinel_spec(r.addon, node, r.primary, self.components.get("sentinel"), operation, password,
                                 sentinel_password, certificates=self.certificates)
        entry = address({"address": r.addon.address, "port": r.addon.port})
        return proxy_spec(r.addon, node, entry, r.members("data"), r.members("sentinel"), self.components.get("haproxy"),
                          operation, password, sentinel_password, certificates=self.certificates)

    async def create(self, r: Replacing, operation) -> StepResult:
        await self.runtime.create_node(self._spec(r, r.new, operation))
        return StepResult(f"{r.new['role']} node {r.new['container']} made on {r.new['host']} "
                          f"in place of {r.lost['container']} ({r.lost.get('down_reason') or 'lost'})")

    async def start(self, r: Replacing, operation) -> StepResult:
        await self.runtime.start_node(r.new["host"], r.new["container"])
        return StepResult(f"started at {r.new['address']}:{r.new['port']}")

    async def wait_ready(self, r: Replacing, operation) -> StepResult:
        password, sentinel_password = self._passwords(r.addon)
        if r.new["role"] == "data":
            info = await self.redis.replication(endpoint(r.primary, password))
            link = next((v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                         and (v.get("ip"), int(v.get("port", 0))) == (r.new["address"], r.new["port"])), None)
            if link is None or link.get("state") != "online":
                raise TransientError(f"the new replica is not in sync with the primary yet ({link or 'not connected'})")
            return StepResult(f"the new replica is in sync at offset {link.get('offset')}")
        if r.new["role"] == "sentinel":
            await knows_whole_cluster(self.redis, r.new, sentinel_password, r.primary, sentinels=len(r.others("sentinel")),
                                      replicas=len(r.replicas))
            return StepResult("the new Sentinel names the primary and sees the others up")
        if not await self.runtime.is_running(r.new["host"], r.new["container"]):
            raise TransientError(f"HAProxy {r.new['container']} does not run yet")
        return StepResult("the new HAProxy runs, bound to the entry address")

    async def rewire_proxies(self, r: Replacing, operation) -> StepResult:
        if r.new["role"] == "proxy":
            return StepResult("nothing to rewire: an HAProxy is known to no other node")
        password, sentinel_password = self._passwords(r.addon)
        rewired = await route_proxies(self.runtime, self.components.get("haproxy"), r.addon, r.others("proxy"),
                                      r.members("data"), r.members("sentinel"), operation, password, sentinel_password)
        return StepResult(f"HAProxy reloaded with the new node: {', '.join(rewired) or 'none running'}")

    async def reset_sentinels(self, r: Replacing, operation) -> StepResult:
        if r.new["role"] == "proxy":
            return StepResult("nothing to reset: Sentinels do not know HAProxy")
        _, sentinel_password = self._passwords(r.addon)
        sentinels = r.others("sentinel")
        seen = len(sentinels) - 1 + (r.new["role"] == "sentinel")  # the others each should see up
        await reset_sentinels(self.redis, sentinels, sentinel_password, r.primary, others_seen=seen,
                              replicas=len(r.replicas))
        return StepResult(f"{len(sentinels)} Sentinels forgot the lost node and see the whole cluster again")

    async def record(self, r: Replacing, operation) -> StepResult:
        r.cluster.mark_node_started(r.new["id"])
        return StepResult(f"{r.new['container']} is one of the cluster's nodes", changes=(r.cluster,))

    async def retire(self, r: Replacing, operation) -> StepResult:
        detail = await self._retire_lost(r)
        r.addon.end_node_replacement(operation_id=operation.id, outcome="replaced")
        return StepResult(detail, changes=(r.addon, r.cluster))

    async def _retire_lost(self, r: Replacing) -> str:
        lost = r.lost
        if lost["state"] not in ("placed", "running", "down"):
            return f"{lost['container']} is {lost['state']} already"
        try:
            await self.runtime.remove_node(lost["host"], lost["container"], lost["volume"])
        except (TransientError, EffectError) as error:
            r.cluster.leave_node_behind(lost["id"], f"replaced; its host did not answer to remove it ({error})")
            return f"{lost['container']} left behind on {lost['host']}, removed when the host answers again"
        r.cluster.retire_node(lost["id"])
        return f"{lost['container']} and its volumes removed"

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        if step != "create":
            return None
        r = await self._replacing(operation)
        await self.runtime.remove_node(r.new["host"], r.new["container"], r.new["volume"])
        r.cluster.retire_node(r.new["id"])
        return StepResult(f"{r.new['container']} and its volumes removed", changes=(r.cluster,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        r = await self._replacing(operation)
        if operation.past_point_of_no_return:  # the HAProxy route with the new node: it is the cluster's now
            if r.new["state"] == "placed":
                r.cluster.mark_node_started(r.new["id"])
            detail = f"the new node is kept (HAProxy knows it); {await self._retire_lost(r)}"
        else:
            detail = "the lost node stays down; the watcher tries again later"
        if r.addon.operation_id == operation.id:
            r.addon.end_node_replacement(operation_id=operation.id, outcome=f"failed: {error}")
        return StepResult(detail, changes=(r.addon, r.cluster))
