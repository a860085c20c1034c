"""An addon's database settings (reference, "Scalingo for Redis® Configuration", "Persistence
Mode", "Cache Mode", "Force TLS Connections"): shown, and changed by a saga that applies them to
the running server (to each data node of a Business addon). `addon` takes an addon ID or `redis`,
as for backups."""

from __future__ import annotations

import structlog

from domain.addon import Addon
from domain.settings import NO_TLS_PORT, setting_key, settings_warnings
from domain.catalog import PlanCatalog, VersionCatalog
from domain.errors import TlsNotAvailable
from domain.operation import Operation
from domain.redis_config import AOF_FSYNC, live_settings
from engine.nodes import endpoint
from engine.addon_lookup import AddonLookup
from engine.cluster_tls import serves_tls_inside
from engine.clusters import cluster_of, serving_node_of
from engine.operations import OperationStarter
from engine.ports import Certificates, EffectError, RedisAdmin, SecretStore, TransientError

log = structlog.get_logger("settings")

# A cluster made before Business clusters served TLS: its nodes listen for plaintext only, and giving
# them TLS live (a port each, certificates, Sentinels and replication moved to TLS) is not done here.
BUSINESS_WITHOUT_TLS = ("runs on a cluster whose nodes serve no TLS (made before Business addons served TLS, or "
                        "moved onto Business from a single node): a Business addon made now serves TLS (restore "
                        "a backup into one to move the data)")


class DatabaseSettings:
    def __init__(self, lookup: AddonLookup, starter: OperationStarter, versions: VersionCatalog,
                 certificates: Certificates, redis: RedisAdmin, secrets: SecretStore, plans: PlanCatalog):
        self.lookup, self.starter, self.versions, self.plans = lookup, starter, versions, plans
        self.certificates, self.redis, self.secrets = certificates, redis, secrets

    async def _addon(self, app: str, ref: str) -> Addon:
        return await self.lookup.live(app, ref)

    async def show(self, app: str, addon: str) -> dict:
        current = await self._addon(app, addon)
        settings = current.settings
        return {
            "addon": current.name,
            "rdb": bool(settings.get("rdb")), "aof": bool(settings.get("aof")),
            "cache_mode": bool(settings.get("cache_mode")), "force_tls": bool(settings.get("force_tls")),
            "version": current.redis_version, "timeout": 150, "databases": 5,
            "aof_fsync": AOF_FSYNC, "maxmemory_policy": live_settings(settings)["maxmemory-policy"],
            "tls_available": current.tls_port is not None, "tls_port": current.tls_port,
            "tls_unavailable": await self._why_no_tls(current),
            "tls_certificate_expires": await self._certificate_expiry(current),
            "warnings": settings_warnings(settings),
        }

    async def change(self, app: str, addon: str, setting: str, enabled: bool) -> dict:
        key = setting_key(setting)
        current = await self._addon(app, addon)
        # On a Business addon, RDB, AOF and cache mode go to every data node (engine/data_node_settings.py);
        # force TLS to its entry (engine/cluster_tls.py).
        if key == "force_tls":
            await self._check_tls(current)
        kind = "change_settings"
        if key == "force_tls":  # its saga also restarts the app, in an order that depends on the direction
            kind = "enable_force_tls" if enabled else "disable_force_tls"
        operation = Operation(kind=kind, addon=current.name, app=app, subject=key)
        current.request_setting_change(key, enabled, operation.id)
        await self.starter.start(operation, current)
        log.info("settings change requested", addon=current.name, setting=key, enabled=enabled,
                 operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id),
                "warnings": settings_warnings(current.target_settings)}

    async def tls_ca(self, app: str, addon: str) -> str:
        """The CA certificate that signs the addon's server certificate: what a client verifies it with."""
        await self._check_tls(await self._addon(app, addon))
        return self.certificates.certificate_pem

    async def _check_tls(self, addon: Addon) -> None:
        if not self.versions.get(addon.redis_version).tls:
            with_tls = ", ".join(v.version for v in self.versions if v.tls and not v.retired)
            raise TlsNotAvailable(f"addon {addon.name} runs {addon.redis_version}, built without TLS; "
                                  f"the versions with TLS are: {with_tls}")
        if await self._cluster_without_tls(addon):
            raise TlsNotAvailable(f"addon {addon.name} {BUSINESS_WITHOUT_TLS}")
        addon.check_serves_tls()

    async def _certificate_expiry(self, addon: Addon) -> str | None:
        """When the certificate the node presents expires (it is renewed 30 days before); None when
        the node serves no TLS or does not answer now."""
        if addon.tls_port is None:
            return None
        try:
            node = endpoint(await serving_node_of(self.lookup.events, addon.name), self.secrets.password_for(addon.name))
            return (await self.redis.presented_certificate(node)).not_after.isoformat()
        except (TransientError, EffectError):
            return None

    async def _cluster_without_tls(self, addon: Addon) -> bool:
        """A Business addon whose cluster does not serve TLS inside (made before Business clusters did,
        or moved from a single node onto one that does not): its entry cannot serve TLS."""
        if not self.plans.get(addon.plan).is_cluster:
            return False
        return addon.tls_port is None or not serves_tls_inside(await cluster_of(self.lookup.events, addon.name))

    async def _why_no_tls(self, addon: Addon) -> str | None:
        if not self.versions.get(addon.redis_version).tls:
            return f"{addon.redis_version} has no TLS"
        if await self._cluster_without_tls(addon):
            return f"the addon {BUSINESS_WITHOUT_TLS}"
        return None if addon.tls_port is not None else f"the addon {NO_TLS_PORT}"
