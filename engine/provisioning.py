"""Provisioning and removal of a single-node addon, as sagas (DESIGN §4).

Provision: create -> start -> wait until PING answers with the password -> publish.
Remove: stop -> remove container and volume (backups are kept).
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import VersionCatalog
from domain.operation import Operation
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of, node_placed_by, promote
from engine.nodes import LABEL, endpoint, node_spec
from engine.ports import Certificates, RedisAdmin, Runtime, SecretStore
from engine.saga import StepResult
from engine.store import EventLog


ADDON_LABEL = f"{LABEL}.addon"


class Provisioning:
    kind = "provision"

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore, versions: VersionCatalog,
                 certificates: Certificates):
        self.events, self.runtime, self.redis, self.secrets, self.versions = events, runtime, redis, secrets, versions
        self.certificates = certificates

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        cluster = await cluster_of(self.events, addon.name)
        node = node_placed_by(cluster, operation)
        if step == "create":
            password = self.secrets.password_for(addon.name)
            await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, self.certificates))
            return StepResult(f"container {node['container']} on {node['host']}")
        if step == "start":
            await self.runtime.start_node(node["host"], node["container"])
            tls = f", TLS on {node['tls_port']}" if node["tls_port"] else ""
            return StepResult(f"started on {node['address']}:{node['port']}{tls}")
        if step == "wait_ready":
            await self.redis.ping(endpoint(node, self.secrets.password_for(addon.name)))
            return StepResult("PING answered")
        if step == "publish":
            addon.mark_provisioned(operation_id=operation.id)
            promote(cluster, node["id"], "provisioned")
            tls = " and their rediss:// twins" if addon.tls_port else ""
            return StepResult(f"REDIS_URL and SCALINGO_REDIS_URL{tls} published", changes=(addon, cluster))
        raise ValueError(f"provisioning has no step {step!r}")

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        """Only `create` left something behind: the container and its volumes (the server's last
        log lines are kept in the record: they usually say why it would not start)."""
        if step != "create":
            return None
        cluster = await cluster_of(self.events, operation.addon)
        node = node_placed_by(cluster, operation)
        logs = await self.runtime.node_logs(node["host"], node["container"])
        await self.runtime.remove_node(node["host"], node["container"], node["volume"])
        cluster.retire_node(node["id"])
        detail = f"container {node['container']} and its volume removed"
        if logs:
            detail += f"; last server log lines: {logs.strip()[-500:]}"
        return StepResult(detail, changes=(cluster,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        self.secrets.forget(addon.name)
        addon.mark_provisioning_failed(operation_id=operation.id, reason=error)
        cluster = await cluster_of(self.events, addon.name)
        for node in cluster.live_nodes:  # retired already when `create` was undone: a no-op then
            cluster.retire_node(node["id"])
        undone = next((s["detail"] for s in operation.steps if s["name"] == "create" and s["status"] == "undone"), None)
        return StepResult(undone or "nothing of the addon was made", changes=(addon, cluster))


class Removal:
    kind = "remove"

    def __init__(self, events: EventLog, runtime: Runtime, secrets: SecretStore, stop_timeout_s: int = 30):
        self.events, self.runtime, self.secrets, self.stop_timeout_s = events, runtime, secrets, stop_timeout_s

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        cluster = await cluster_of(self.events, addon.name)
        if step == "stop":
            for node in cluster.live_nodes:
                await self.runtime.stop_node(node["host"], node["container"], self.stop_timeout_s)
            return StepResult(", ".join(f"container {n['container']}" for n in cluster.live_nodes) + " stopped"
                              if cluster.live_nodes else "no node left to stop")
        if step == "remove":
            # Every node of the cluster, and any container an abandoned operation left (a new node it made).
            left = {(n["host"], n["container"]): n["volume"] for n in cluster.live_nodes}
            for found in await self.runtime.nodes(**{ADDON_LABEL: addon.name}):
                left.setdefault((found.host, found.container), f"{found.container}-data")
            for (host, container), volume in sorted(left.items()):
                await self.runtime.remove_node(host, container, volume)
            for node in cluster.live_nodes:
                cluster.retire_node(node["id"])
            for secret in (addon.name, sentinel_secret(addon.name)):  # a Business cluster's Sentinels have their own
                self.secrets.forget(secret)
            addon.mark_removed(operation_id=operation.id)
            names = [container for _, container in sorted(left)]
            removed = (f"container {names[0]} and its volumes" if len(names) == 1 else
                       f"containers {', '.join(names)} and their volumes" if names else "nothing left to")
            return StepResult(f"{removed} removed; backups kept", changes=(addon, cluster))
        raise ValueError(f"removal has no step {step!r}")

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        addon.mark_removal_failed(operation_id=operation.id, reason=error)
        return StepResult("removal can be asked again", changes=(addon,))
