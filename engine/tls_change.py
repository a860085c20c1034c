"""Forcing TLS on or off, as a saga (reference, "Force TLS Connections": once on, the database
denies any non-TLS connection, and the app must connect with TLS).

Turned on (`enable_force_tls`), TLS being served beside plaintext already:
restart_app  the app is restarted with the rediss:// URL, while plaintext still works
apply        the plaintext port closes (`CONFIG SET port 0`), the plaintext connections still open
             are dropped, and redis.conf is rewritten with `port 0`
verify       CONFIG GET shows it
publish      the addon's settings are the new ones: REDIS_URL is the rediss:// URL

Turned off (`disable_force_tls`): apply (the plaintext port opens again) -> verify -> publish ->
restart_app with the redis:// URL.

The engine itself always speaks TLS to such a node, so it is never locked out halfway. A failure
before `publish` puts the port back as it was (and the app's former URL, best effort); after it,
the setting stands.

On a Business addon the same steps change its entry only (engine/cluster_tls.py): `apply` has every
HAProxy bind the entry's TLS port alone (or both again) and reload; `verify` finds the entry
answering over TLS, and over plaintext only when TLS is not forced.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import ComponentCatalog
from domain.operation import Operation
from domain.redis_config import plaintext_port
from engine.app_restart import restart_app
from engine.cluster_tls import bind_entry, entry_answers_as_set
from engine.clusters import cluster_of, serving_node_of
from engine.data_node_settings import replicated
from engine.nodes import endpoint
from engine.ports import AppRestarter, EffectError, TransientError
from engine.saga import StepResult
from engine.settings_change import SettingsChange


class TlsChange(SettingsChange):
    kind = "enable_force_tls"  # and "disable_force_tls": the same saga, its steps in another order
    deadlines: dict[str, float] = {}  # a port opens or closes at once: no AOF rewrite to wait for here

    def __init__(self, *args, restarter: AppRestarter, components: ComponentCatalog | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.restarter = restarter
        self.components = components or ComponentCatalog.load()  # a Business addon's HAProxy

    def wanted(self, addon: Addon, settings: dict) -> dict[str, str]:
        return {"port": str(plaintext_port(addon.port, addon.tls_port, settings))}

    async def apply(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            reloaded = await bind_entry(self.runtime, self.components, self.secrets, addon, cluster, operation,
                                        addon.target_settings)
            bound = "TLS only" if addon.target_settings.get("force_tls") else "plaintext and TLS"
            return StepResult(f"the entry binds {bound}: {', '.join(reloaded)} reloaded")
        await self._configure(addon, operation, password, addon.target_settings)
        if not addon.target_settings.get("force_tls"):
            return StepResult(f"plaintext served again on {addon.address}:{addon.port}; redis.conf rewritten")
        dropped = await self._drop_plaintext_clients(addon, password)
        return StepResult(f"plaintext port {addon.port} closed, {dropped} plaintext connection"
                          f"{'' if dropped == 1 else 's'} dropped; TLS only, on {addon.tls_port}; redis.conf rewritten")

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        if replicated(await cluster_of(self.events, addon.name)):
            return StepResult(await entry_answers_as_set(self.redis, addon, password,
                                                         bool(addon.target_settings.get("force_tls"))))
        return await super().verify(addon, operation, password)

    async def _drop_plaintext_clients(self, addon: Addon, password: str) -> int:
        node = await serving_node_of(self.events, addon.name)
        return await self.redis.disconnect_plaintext_clients(endpoint(node, password), node["port"])

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        addon.mark_settings_changed(operation_id=operation.id)
        scheme = "rediss://" if addon.settings.get("force_tls") else "redis://"
        return StepResult(f"REDIS_URL and SCALINGO_REDIS_URL are now the {scheme} URL", changes=(addon,))

    async def restart_app(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        # Before publish (turning it on) the app gets the URL of the settings being applied.
        settings = addon.target_settings if addon.target_settings is not None else addon.settings
        return StepResult(await restart_app(self.events, self.restarter, addon, password, settings))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        if operation.past_point_of_no_return:
            return StepResult(f"nothing undone: the setting is applied; only the app's restart failed ({error})")
        if replicated(await cluster_of(self.events, operation.addon)):
            return await self._compensate_entry(operation, error)
        result = await super().compensate(operation, error)
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        password = self.secrets.password_for(addon.name)
        if addon.settings.get("force_tls"):
            # Turning it off failed: the port is closed again, and whoever came in meanwhile goes.
            await self._drop_plaintext_clients(addon, password)
            return result
        if operation.step_succeeded("restart_app"):
            try:
                detail = await restart_app(self.events, self.restarter, addon, password)
            except (TransientError, EffectError) as e:
                detail = f"the app keeps the rediss:// URL, which works (TLS is served beside plaintext): {e}"
            return StepResult(f"{result.detail}; {detail}", changes=result.changes)
        return result

    async def _compensate_entry(self, operation: Operation, error: str) -> StepResult:
        """A Business addon's entry binds as the addon's settings say again; the app gets its URL back."""
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        cluster = await cluster_of(self.events, addon.name)
        await bind_entry(self.runtime, self.components, self.secrets, addon, cluster, operation, addon.settings)
        addon.mark_settings_change_failed(operation_id=operation.id, reason=error)
        detail = "the entry binds as before"
        if operation.step_succeeded("restart_app") and not addon.settings.get("force_tls"):
            try:
                detail += "; " + await restart_app(self.events, self.restarter, addon, self.secrets.password_for(addon.name))
            except (TransientError, EffectError) as e:
                detail += f"; the app keeps the rediss:// URL, which works (the entry serves TLS beside plaintext): {e}"
        return StepResult(detail, changes=(addon,))
