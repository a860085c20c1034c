"""Provisioning a Business addon's cluster, as a saga (reference, "Scalingo for Redis® Cluster
Setup"): seven containers on three hosts, started in the order they depend on each other, each
stage waited for before the next.

create          every node's container, volumes and configuration (data nodes in replication,
                Sentinels watching the primary, HAProxy bound to the entry address)
start_data      the two data nodes
wait_replica    the replica has synced with the primary (writes need one in sync)
start_sentinels the three Sentinels
wait_sentinels  each Sentinel names the primary and knows the two others and the replica (it
                learns the replica from the primary's INFO, every 10 s at first: a failover before
                that would find "no good replica")
start_proxies   the two HAProxy
wait_entry      the entry address answers PING with the addon's password, through HAProxy
publish         REDIS_URL points at the entry address
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster_config import MASTER_NAME
from domain.operation import Operation
from engine.cluster_nodes import address, data_node_spec, entry_endpoint, proxy_spec, sentinel_spec
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import Certificates, RedisAdmin, Runtime, SecretStore, TransientError
from engine.saga import StepResult
from engine.store import EventLog


async def knows_whole_cluster(redis: RedisAdmin, sentinel: dict, password: str, primary: dict, sentinels: int,
                              replicas: int) -> None:
    """Return once `sentinel` names `primary` and sees that many other Sentinels and replicas up."""
    view = await redis.sentinel_view(endpoint(sentinel, password), MASTER_NAME)
    seen = (view["primary"], len(view["sentinels_up"]), len(view["replicas_up"]))
    if seen != (f"{primary['address']}:{primary['port']}", sentinels, replicas):
        raise TransientError(f"Sentinel {sentinel['address']}:{sentinel['port']} does not know the whole cluster yet: "
                             f"it names {seen[0]}, sees {seen[1]} other Sentinels and {seen[2]} replicas up")


def sentinel_secret(addon: str) -> str:
    """Where the Sentinels' own password is kept, beside the addon's."""
    return f"{addon}-sentinels"  # never an addon's name: those end in four digits


class ClusterProvisioning:
    kind = "provision_cluster"
    deadlines = {"wait_replica": 120.0, "wait_sentinels": 90.0, "wait_entry": 60.0}

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, components: ComponentCatalog, certificates: Certificates | None = None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.components, self.certificates = versions, components, certificates

    async def _nodes(self, operation: Operation) -> tuple[Addon, object, dict[str, list[dict]]]:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        cluster = await cluster_of(self.events, addon.name)
        mine = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id) and n["state"] != "retired"]
        return addon, cluster, {role: [n for n in mine if n["role"] == role] for role in ("data", "sentinel", "proxy")}

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon, cluster, nodes = await self._nodes(operation)
        return await getattr(self, step)(addon, cluster, nodes, operation)

    def _passwords(self, addon: Addon) -> tuple[str, str]:
        return self.secrets.password_for(addon.name), self.secrets.password_for(sentinel_secret(addon.name))

    async def create(self, addon, cluster, nodes, operation) -> StepResult:
        password, sentinel_password = self._passwords(addon)
        primary, replica = nodes["data"]
        entry = address({"address": addon.address, "port": addon.port})
        # A write is acknowledged once a replica is in sync; the engine lowers this while none is
        # (engine/failover_follower.py), so a promoted replica takes writes again within a round.
        tls = self.certificates  # the nodes of a cluster that serves TLS get their certificates (and HAProxy the CA)
        specs = [data_node_spec(addon, primary, None, operation, password, self.versions, certificates=tls),
                 data_node_spec(addon, replica, primary, operation, password, self.versions, certificates=tls)]
        specs += [sentinel_spec(addon, s, primary, self.components.get("sentinel"), operation, password,
                                sentinel_password, certificates=tls) for s in nodes["sentinel"]]
        specs += [proxy_spec(addon, p, entry, nodes["data"], nodes["sentinel"], self.components.get("haproxy"),
                             operation, password, sentinel_password, certificates=tls) for p in nodes["proxy"]]
        for spec in specs:
            await self.runtime.create_node(spec)
        hosts = sorted({s.host for s in specs})
        return StepResult(f"{len(specs)} containers on {', '.join(hosts)}")

    async def _start(self, group: list[dict], what: str) -> StepResult:
        for node in group:
            await self.runtime.start_node(node["host"], node["container"])
        return StepResult(f"{what} started: " + ", ".join(f"{n['address']}:{n['port']}" for n in group))

    async def start_data(self, addon, cluster, nodes, operation) -> StepResult:
        return await self._start(nodes["data"], "primary and replica")

    async def start_sentinels(self, addon, cluster, nodes, operation) -> StepResult:
        return await self._start(nodes["sentinel"], "Sentinels")

    async def start_proxies(self, addon, cluster, nodes, operation) -> StepResult:
        return await self._start(nodes["proxy"], "HAProxy")

    async def wait_replica(self, addon, cluster, nodes, operation) -> StepResult:
        password, _ = self._passwords(addon)
        primary, replica = nodes["data"]
        info = await self.redis.replication(endpoint(primary, password))
        link = info.get("slave0") or {}
        if info.get("role") != "master" or link.get("state") != "online":
            raise TransientError(f"the replica {replica['address']}:{replica['port']} is not in sync with the primary yet")
        return StepResult(f"replica in sync at offset {link.get('offset')}")

    async def wait_sentinels(self, addon, cluster, nodes, operation) -> StepResult:
        _, sentinel_password = self._passwords(addon)
        primary = nodes["data"][0]
        for node in nodes["sentinel"]:
            await knows_whole_cluster(self.redis, node, sentinel_password, primary, sentinels=2, replicas=1)
        return StepResult("each Sentinel names the primary and knows the two others and the replica")

    async def wait_entry(self, addon, cluster, nodes, operation) -> StepResult:
        password, _ = self._passwords(addon)
        entry = entry_endpoint(addon, password)
        await self.redis.ping(entry)
        return StepResult(f"the entry {entry} answers, through HAProxy, from the primary")

    async def publish(self, addon, cluster, nodes, operation) -> StepResult:
        addon.mark_provisioned(operation_id=operation.id)
        for node in [n for group in nodes.values() for n in group]:
            cluster.mark_node_started(node["id"])
        cluster.change_primary(new=nodes["data"][0]["id"], reason="provisioned")
        return StepResult("REDIS_URL and SCALINGO_REDIS_URL published: the entry address", changes=(addon, cluster))

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        if step != "create":
            return None
        addon, cluster, nodes = await self._nodes(operation)
        removed = []
        for node in [n for group in nodes.values() for n in group]:
            await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            cluster.retire_node(node["id"])
            removed.append(node["container"])
        return StepResult(f"{len(removed)} containers and their volumes removed", changes=(cluster,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon, cluster, _ = await self._nodes(operation)
        for name in (addon.name, sentinel_secret(addon.name)):
            self.secrets.forget(name)
        addon.mark_provisioning_failed(operation_id=operation.id, reason=error)
        for node in cluster.live_nodes:
            cluster.retire_node(node["id"])
        return StepResult("nothing of the cluster is left", changes=(addon, cluster))
