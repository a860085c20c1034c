"""A node made before TLS was served here starts serving it, live, beside plaintext (reference,
"Force TLS Connections": TLS available on every addon whose engine build has it). Found by the
scheduler, as a saga:

apply    a port of the node's host is held for TLS; the certificate, its key, the CA and a
         redis.conf with the TLS lines go into the container; the running server opens its TLS
         port (`CONFIG SET tls-… / tls-port`): nothing restarts, plaintext goes on
verify   the node answers over TLS, verified with the CA
publish  the addon serves TLS: its rediss:// URL is published beside REDIS_URL (which is
         unchanged, so the app needs no restart)

A failure closes the TLS port again, puts the former redis.conf back and gives the port back.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from domain.addon import Addon
from domain.errors import AddonBusy
from domain.catalog import PlanCatalog, VersionCatalog
from domain.operation import Operation
from domain.redis_config import tls_lines
from engine.nodes import endpoint, node_spec
from engine.clusters import cluster_of, serving_node, serving_node_of
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.ports import Certificates, ReadModels, RedisAdmin, Runtime, SecretStore
from engine.saga import StepResult
from engine.store import EventLog

log = structlog.get_logger("tls")


def plaintext(node: dict) -> dict:
    """The node as it is reached before it serves TLS (and after a refusal): its plaintext port only."""
    return {**node, "tls_port": None}


def tls_parameters(tls_port: int) -> dict[str, str]:
    """The TLS lines of redis.conf as CONFIG SET takes them (all in one: Redis checks them together)."""
    parameters = dict(line.split(" ", 1) for line in tls_lines(tls_port))
    parameters["tls-protocols"] = parameters["tls-protocols"].strip('"')
    return parameters


class TlsServing:
    kind = "serve_tls"

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, certificates: Certificates):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.certificates = versions, certificates

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return await getattr(self, step)(addon, operation, self.secrets.password_for(addon.name))

    async def apply(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        node = await serving_node_of(self.events, addon.name)  # its TLS port is held since the request
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, self.certificates))
        await self.redis.configure_together(endpoint(plaintext(node), password), tls_parameters(node["tls_port"]))
        return StepResult(f"TLS served on {node['address']}:{node['tls_port']}, beside plaintext; redis.conf rewritten")

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        await self.redis.ping(endpoint(await serving_node_of(self.events, addon.name), password))
        return StepResult("PING answered over TLS, verified with the CA")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        addon.mark_tls_served(operation_id=operation.id)
        return StepResult("REDIS_TLS_URL and SCALINGO_REDIS_TLS_URL published; REDIS_URL unchanged", changes=(addon,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        password = self.secrets.password_for(addon.name)
        cluster = await cluster_of(self.events, addon.name)
        node = plaintext(serving_node(cluster))
        # The file first: Docker writes it into a stopped container too, so a node that is down
        # does not come back serving TLS that no event records.
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, None))
        if await self.runtime.is_running(node["host"], node["container"]):
            await self.redis.configure(endpoint(node, password), {"tls-port": "0"})
        addon.mark_tls_serving_failed(operation_id=operation.id, reason=error)
        if cluster.node(node["id"])["tls_port"] is not None:
            cluster.change_node_ports(node["id"], None)
        return StepResult("redis.conf as before, TLS port closed and given back", changes=(addon, cluster))


class MissingTls:
    """Finds the running nodes of TLS-capable builds that do not serve TLS yet (`engine.missing_tls`,
    looked at from the scheduler) and starts `serve_tls` on each; one that failed is tried again
    only hours later, not at every tick."""

    RETRY_AFTER_S = 6 * 3600

    def __init__(self, events: EventLog, views: ReadModels, versions: VersionCatalog, placing: Placing,
                 starter: OperationStarter, plans: PlanCatalog):
        self.events, self.views, self.versions, self.placing, self.starter = events, views, versions, placing, starter
        self.plans = plans
        self._tried: dict[str, float] = {}  # addon -> time.monotonic() of its last start

    async def serve_where_missing(self) -> list[str]:
        """Start serving TLS where it is missing; return the addons it started on."""
        started = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] != "running" or row["tls_port"] or not self.versions.get(row["version"]).tls:
                continue
            if self.plans.get(row["plan"]).is_cluster:
                continue  # a Business cluster serves no TLS yet: its entry would need it too
            if time.monotonic() - self._tried.get(row["name"], -self.RETRY_AFTER_S) < self.RETRY_AFTER_S:
                continue
            try:
                if await self._start(row["name"]):
                    started.append(row["name"])
                    self._tried[row["name"]] = time.monotonic()
            except Exception as error:  # one node's trouble never stops the others'
                log.warning("could not start serving TLS", addon=row["name"], error=str(error) or type(error).__name__)
        return started

    async def _start(self, name: str) -> bool:
        addon: Addon = await self.events.get(Addon.id_for(name))
        if addon.is_busy:
            return False  # looked at again at the next tick
        async with self.placing.held() as placer:
            operation = Operation(kind="serve_tls", addon=name, app=addon.app)
            cluster = await cluster_of(self.events, addon.name)
            node = serving_node(cluster)
            tls_port = placer.free_port(node["host"])
            addon.request_tls_port(tls_port, operation.id)
            cluster.change_node_ports(node["id"], tls_port)  # held from now on
            try:
                position = await self.starter.record(operation, addon, cluster)
            except AddonBusy:
                return False
        await self.starter.caught_up(position)
        log.info("serving TLS", addon=name, tls_port=tls_port, operation_id=str(operation.id))
        return True
