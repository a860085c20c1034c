"""What the two plan changes between a single node and a Business cluster share (reference,
"Changing Plans"; engine/kind_change_to_business.py, engine/kind_change_to_starter.py).

Either way the new nodes replicate the old primary, the app's new URL is published and the app
restarted while the old primary still serves (through the entry, or beside it), and the only write
gap is one coordinated switch of the primary (engine/primary_switch.py). A failure before the point
of no return removes every node the change made; past it, the change is finished (each step is
idempotent, so finishing runs the steps left), for the app already uses the new URL.
"""

from __future__ import annotations

import copy

from domain.addon import Addon
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster import Cluster, node_record
from domain.cluster_config import QUORUM
from domain.operation import Operation
from domain.placement import Placement
from domain.redis_config import TLS_DIR, TLS_FILES
from engine.app_restart import restart_app
from engine.cluster_forming import MEMORY, TLS_ROLES
from engine.cluster_provisioning import sentinel_secret
from engine.cluster_rewiring import route_proxies
from engine.clusters import cluster_of
from engine.nodes import CONFIG_DIR, endpoint, node_spec
from engine.ports import AppRestarter, Endpoint, RedisAdmin, Runtime, SecretStore, TransientError
from engine.primary_switch import PrimarySwitch, at
from engine.saga import StepResult
from engine.store import EventLog


def new_cluster_nodes(name: str, memory_mib: int, version: str, requests, placed: list[Placement],
                      operation: Operation, tls: bool) -> list[dict]:
    """The records of a Business cluster's nodes a change to a Business plan places, named and serving
    TLS as a provisioning makes them (engine/cluster_forming.py)."""
    records = []
    for i, (request, where) in enumerate(zip(requests, placed)):
        container = f"redis-addons-{name}-{operation.id.hex[:8]}-{request.role}{i}"
        record = node_record(request.role, where.host, where.address, where.port, container, f"{container}-data",
                             MEMORY.get(request.role, memory_mib), version,
                             tls_port=where.port if tls and request.role in TLS_ROLES else None)
        records.append({**record, "placed_by": str(operation.id)})
    return records


def known(node: dict, tls: bool) -> dict:
    """A single node as a cluster whose nodes serve TLS only reaches it (replicas, Sentinels, HAProxy):
    at its TLS port; it still says it is at its plaintext one (`answers_at`)."""
    if not (tls and node.get("tls_port")):
        return node
    return {**node, "port": node["tls_port"], "answers_at": f"{node['address']}:{node['port']}"}


class Change:
    """What a kind change works on: the addon, its cluster, the old primary (the operation's subject)
    and the nodes the change placed."""

    def __init__(self, addon: Addon, cluster: Cluster, operation: Operation):
        self.addon, self.cluster, self.operation = addon, cluster, operation
        self.old = cluster.node(operation.subject)
        self.mine = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]

    def placed(self, role: str) -> list[dict]:
        return [n for n in self.mine if n["role"] == role]

    def live(self, role: str) -> list[dict]:
        return [n for n in self.cluster.live_nodes if n["role"] == role]

    def running(self, role: str) -> list[dict]:
        return [n for n in self.live(role) if n["state"] == "running"]

    @property
    def plan(self) -> str:
        return self.addon.target["plan"]

    @property
    def future(self) -> Addon:
        """The addon at the address the change publishes (the aggregate itself is not changed): the
        entry that HAProxy binds, and that the data nodes' certificates name."""
        shown = copy.copy(self.addon)
        target = self.addon.target or {}
        shown.address, shown.port = target.get("address", shown.address), target.get("port", shown.port)
        shown.tls_port = target.get("tls_port", shown.tls_port)
        return shown


class KindChange:
    """The steps both ways share; a subclass names its steps and what it finishes with."""

    finishing: tuple[str, ...] = ()  # the steps compensation runs past the point of no return

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, components: ComponentCatalog, restarter: AppRestarter, certificates=None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.components, self.restarter, self.certificates = versions, components, restarter, certificates

    async def _change(self, operation: Operation) -> Change:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return Change(addon, await cluster_of(self.events, addon.name), operation)

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        return await getattr(self, step)(await self._change(operation))

    def passwords(self, addon: Addon) -> tuple[str, str]:
        return self.secrets.password_for(addon.name), self.secrets.password_for(sentinel_secret(addon.name))

    def endpoint(self, c: Change, node: dict) -> Endpoint:
        return endpoint(node, self.passwords(c.addon)[0])  # over TLS where the node serves it

    def switching(self, c: Change, entry: Endpoint) -> PrimarySwitch:
        password, sentinel_password = self.passwords(c.addon)
        return PrimarySwitch(self.redis, c.live("sentinel"), c.running("sentinel"), entry, password, sentinel_password)

    async def start(self, nodes: list[dict], spec) -> list[str]:
        """Each of `nodes` made from `spec(node)` and started, unless it runs already (a step run again)."""
        started = []
        for node in nodes:
            if not await self.runtime.is_running(node["host"], node["container"]):
                await self.runtime.create_node(spec(node))
                await self.runtime.start_node(node["host"], node["container"])
            started.append(node["container"])
        return started

    async def in_sync(self, c: Change, primary: dict, replica: dict) -> int:
        """The offset `replica` is in sync at, as `primary` tells it; not yet: a transient error."""
        info = await self.redis.replication(self.endpoint(c, primary))
        link = next((v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                     and f"{v.get('ip')}:{v.get('port')}" == at(replica)), None)
        if link is None or link.get("state") != "online":
            raise TransientError(f"{replica['container']} is not in sync with the primary yet ({link or 'not connected'})")
        return int(link.get("offset", 0))

    async def electable(self, c: Change, entry: Endpoint, nodes: list[dict], not_nodes: list[dict] = ()) -> None:
        """A majority of the Sentinels see each of `nodes` electable and none of `not_nodes` (a Sentinel
        reads a replica's priority every 10 s: until it has, it would still elect by the old one)."""
        def sees(view) -> bool:
            return (all(at(n) in view["replicas_electable"] for n in nodes)
                    and not any(at(n) in view["replicas_electable"] for n in not_nodes))
        if len(await self.switching(c, entry).seeing(lambda view: sees(view) or None)) < QUORUM:
            raise TransientError("the Sentinels do not see the priorities of now yet")

    async def route(self, c: Change, data_nodes: list[dict]) -> list[str]:
        password, sentinel_password = self.passwords(c.addon)
        return await route_proxies(self.runtime, self.components.get("haproxy"), c.addon, c.running("proxy"),
                                   data_nodes, c.live("sentinel"), c.operation, password, sentinel_password)

    async def remove(self, c: Change, nodes: list[dict]) -> list[str]:
        for node in nodes:
            await self.runtime.remove_node(node["host"], node["container"], node["volume"])
            c.cluster.retire_node(node["id"])
        return [n["container"] for n in nodes]

    def certificate_naming_entry(self, c: Change, node: dict, entry: str) -> dict[str, str]:
        """A single node's certificate files, naming the entry address too: the entry passes TLS through
        to the primary, and while the change runs that is this node (apps verify it at the entry)."""
        if self.certificates is None or not node.get("tls_port"):
            return {}
        certificate, key = self.certificates.issue_server_certificate(node["address"], (c.addon.name,), also_at=(entry,))
        tls = TLS_DIR.removeprefix(CONFIG_DIR + "/")
        return {f"{tls}/{TLS_FILES['cert']}": certificate, f"{tls}/{TLS_FILES['key']}": key,
                f"{tls}/{TLS_FILES['ca']}": self.certificates.certificate_pem}

    async def certified_alone(self, c: Change, node: dict) -> bool:
        """A single node's certificate naming it alone again, once no entry passes TLS through to it:
        its file written and the running server reloading it. False when it serves no TLS."""
        if self.certificates is None or not node.get("tls_port"):
            return False
        await self.runtime.create_node(node_spec(c.addon, node, c.operation, self.passwords(c.addon)[0], self.versions,
                                                 self.certificates))
        await self.redis.reload_certificate(self.endpoint(c, node), f"{TLS_DIR}/{TLS_FILES['cert']}",
                                            f"{TLS_DIR}/{TLS_FILES['key']}")
        return True

    async def restart_app(self, c: Change) -> StepResult:
        done = await restart_app(self.events, self.restarter, c.addon, self.passwords(c.addon)[0])
        return StepResult(f"{done}, onto {c.addon.address}:{c.addon.port}")

    async def publish(self, c: Change) -> StepResult:
        c.addon.publish_target_address(operation_id=c.operation.id)
        return StepResult(f"REDIS_URL and SCALINGO_REDIS_URL now {c.addon.address}:{c.addon.port}"
                          f"{self.published_note}", changes=(c.addon,))

    published_note = ""

    async def finish_forward(self, operation: Operation, error: str, past: bool = False) -> StepResult | None:
        """Past the point of no return (or `past` it: what the saga sees), the new nodes serve: the
        steps left are run (each is idempotent) on one view of the addon and cluster, saved with the
        compensation."""
        if not (past or operation.past_point_of_no_return):
            return None
        c = await self._change(operation)
        done = []
        for step in [s for s in self.finishing if not operation.step_succeeded(s)]:
            result = await getattr(self, step)(c)
            done.append(f"{step}: {result.detail}")
        return StepResult(f"finished forward after '{error}': " + "; ".join(done), changes=(c.addon, c.cluster))
