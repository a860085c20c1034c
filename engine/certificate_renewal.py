"""A node's TLS server certificate renewed before it expires, as a saga:

check   the certificate the server presents now is read (its fingerprint and expiry)
renew   a new certificate and key are written into the node's container, and the running server
        loads them (`CONFIG SET tls-cert-file …`): open connections stay, nothing restarts, so no
        data is at risk even without persistence. The node is verified as ours and at its address
        for that command, but not the dates: one that has already expired (the engine was off for
        the whole renewal window) is renewed the same way.
verify  the server answers over TLS, verified with the CA, and presents another certificate
record  the addon is free again; the new expiry is on the event

A failure leaves the server with the certificate it had; the next check tries again.

On a Business addon each data node and Sentinel has its own certificate, renewed in the same steps,
node after node (engine/cluster_certificates.py); the addon is due when the first of them is.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import structlog

from domain.addon import Addon
from domain.errors import AddonBusy
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.certificates import certificate_due
from domain.operation import Operation
from domain.redis_config import TLS_DIR, TLS_FILES
from engine.cluster_certificates import node_endpoint, nodes_with_certificates, renew_node
from engine.clusters import cluster_of, serving_node, serving_node_of
from engine.data_node_settings import replicated
from engine.nodes import endpoint, node_spec
from engine.operations import OperationStarter
from engine.ports import Certificates, EffectError, ReadModels, RedisAdmin, Runtime, SecretStore
from engine.saga import StepResult
from engine.store import EventLog

log = structlog.get_logger("certificates")

CHECK_EVERY_S = 6 * 3600  # a handshake per node: often enough for a 30-day window, rare enough to cost nothing


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CertificateRenewal:
    kind = "renew_certificate"

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, certificates: Certificates, clock=utc_now,
                 components: ComponentCatalog | None = None):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.certificates, self.clock = versions, certificates, clock
        self.components = components or ComponentCatalog.load()  # a Business cluster's Sentinels

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return await getattr(self, step)(addon, operation, self.secrets.password_for(addon.name))

    async def check(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            presented = {n["id"]: await self.redis.presented_certificate(node_endpoint(self.secrets, addon.name, n))
                         for n in nodes_with_certificates(cluster)}
            if not presented:
                raise EffectError("no node of the cluster serves TLS")
            first = min(p.not_after for p in presented.values())
            return StepResult(f"{len(presented)} nodes present certificates; the first expires on {first:%Y-%m-%d}",
                              outcome={"sha256": {k: p.sha256 for k, p in presented.items()},
                                       "not_after": first.isoformat()})
        served = await self.redis.presented_certificate(endpoint(await serving_node_of(self.events, addon.name), password))
        return StepResult(f"the node presents a certificate valid until {served.not_after:%Y-%m-%d}",
                          outcome={"sha256": served.sha256, "not_after": served.not_after.isoformat()})

    async def renew(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            checked = operation.outcome("check")["sha256"]
            done = [await renew_node(self.runtime, self.redis, self.secrets, self.versions, self.components,
                                     self.certificates, addon, n, operation)
                    for n in nodes_with_certificates(cluster) if n["id"] in checked]
            return StepResult(f"new certificates written: {'; '.join(done)}")
        node = await serving_node_of(self.events, addon.name)
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, self.certificates))
        await self.redis.reload_certificate(endpoint(node, password),
                                            f"{TLS_DIR}/{TLS_FILES['cert']}", f"{TLS_DIR}/{TLS_FILES['key']}")
        was = datetime.fromisoformat(operation.outcome("check")["not_after"])
        expired = f" (the one it replaces had expired on {was:%Y-%m-%d})" if was <= self.clock() else ""
        return StepResult(f"new certificate written and loaded live{expired}")

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            return await self._verify_cluster(addon, cluster, operation)
        node = endpoint(await serving_node_of(self.events, addon.name), password)
        await self.redis.ping(node)  # verified with the CA: the new certificate is trusted (and the node up)
        renewed = await self.redis.presented_certificate(node)
        if renewed.sha256 == operation.outcome("check")["sha256"]:
            raise EffectError("the server still presents the certificate it had")
        return StepResult(f"the node presents the new certificate, valid until {renewed.not_after:%Y-%m-%d}",
                          outcome={"not_after": renewed.not_after.isoformat()})

    async def _verify_cluster(self, addon: Addon, cluster, operation: Operation) -> StepResult:
        checked = operation.outcome("check")["sha256"]
        renewed = []
        for node in [n for n in nodes_with_certificates(cluster) if n["id"] in checked]:
            at = node_endpoint(self.secrets, addon.name, node)
            if node["role"] == "data":
                await self.redis.ping(at)  # verified with the CA: the new certificate is trusted
            presented = await self.redis.presented_certificate(at)
            if presented.sha256 == checked[node["id"]]:
                raise EffectError(f"{node['container']} still presents the certificate it had")
            renewed.append(presented.not_after)
        first = min(renewed)
        return StepResult(f"{len(renewed)} nodes present new certificates; the first expires on {first:%Y-%m-%d}",
                          outcome={"not_after": first.isoformat()})

    async def record(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        addon.mark_certificate_renewed(operation_id=operation.id, not_after=operation.outcome("verify")["not_after"])
        return StepResult("renewed", changes=(addon,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        addon.mark_certificate_renewal_failed(operation_id=operation.id, reason=error)
        return StepResult("the node keeps the certificate it had; the next check tries again", changes=(addon,))


class CertificateRenewals:
    """Which nodes' certificates are due, looked at from the scheduler (`engine.certificates_renewals`)."""

    def __init__(self, events: EventLog, views: ReadModels, redis: RedisAdmin, secrets: SecretStore,
                 starter: OperationStarter, clock=utc_now):
        self.events, self.views, self.redis, self.secrets, self.starter = events, views, redis, secrets, starter
        self.clock = clock
        self._checked_at: float | None = None  # time.monotonic(): the wall clock may step back

    async def renew_due(self, now: datetime | None = None, force_check: bool = False) -> list[str]:
        """Start a renewal for each running node whose certificate is due at `now`; return their
        addons. Looked at once every CHECK_EVERY_S (a handshake per node); `force_check` looks now,
        and leaves that rhythm as it was."""
        if not force_check and self._checked_at is not None and time.monotonic() - self._checked_at < CHECK_EVERY_S:
            return []
        now = now or self.clock()
        started = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] != "running" or not row["tls_port"]:
                continue
            try:
                if await self._renew_if_due(row["name"], now):
                    started.append(row["name"])
            except Exception as error:  # one node's trouble never stops the others' renewal
                log.warning("certificate check failed", addon=row["name"], error=str(error) or type(error).__name__)
        if not force_check:  # only once looked at: a failure above is tried again next tick
            self._checked_at = time.monotonic()
        return started

    async def _renew_if_due(self, name: str, now: datetime) -> bool:
        addon: Addon = await self.events.get(Addon.id_for(name))
        if addon.is_busy:
            return False  # checked again later
        not_after = await self._first_expiry(name)
        if not certificate_due(not_after, now):
            return False
        operation = Operation(kind="renew_certificate", addon=name, app=addon.app)
        addon.start_certificate_renewal(operation.id)
        try:
            await self.starter.start(operation, addon)
        except AddonBusy:  # the addon changed meanwhile: checked again later
            return False
        log.info("certificate renewal started", addon=name, expires=not_after.isoformat(), operation_id=str(operation.id))
        return True

    async def _first_expiry(self, name: str) -> datetime:
        """When the node's certificate expires; of a Business cluster, the first of its nodes' to."""
        cluster = await cluster_of(self.events, name)
        if replicated(cluster):
            nodes = [node_endpoint(self.secrets, name, n) for n in nodes_with_certificates(cluster)]
        else:
            nodes = [endpoint(serving_node(cluster), self.secrets.password_for(name))]
        return min([(await self.redis.presented_certificate(node)).not_after for node in nodes])
