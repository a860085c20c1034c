"""Forcing TLS on or off, as a saga (reference, "Force TLS Connections": once on, the database
denies any non-TLS connection, and the app must connect with TLS):

apply        the plaintext port closes (`CONFIG SET port 0`) and the connections still open on it
             are dropped; or, turned off, it opens again. Then redis.conf is rewritten the same way.
verify       CONFIG GET shows it
publish      the addon's settings are the new ones: the app's REDIS_URL becomes the rediss:// URL
             (or the redis:// one again)
restart_app  the app is restarted with that environment

The engine itself always speaks TLS to such a node, so it is never locked out halfway. Before
`publish` a failure puts plaintext back as it was; after it, the setting stands.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.operation import Operation
from domain.redis_config import plaintext_port
from engine.app_restart import restart_app
from engine.nodes import endpoint
from engine.ports import AppRestarter
from engine.saga import StepResult
from engine.settings_change import SettingsChange


class TlsChange(SettingsChange):
    kind = "force_tls"

    def __init__(self, *args, restarter: AppRestarter, **kwargs):
        super().__init__(*args, **kwargs)
        self.restarter = restarter

    def wanted(self, addon: Addon, settings: dict) -> dict[str, str]:
        return {"port": str(plaintext_port(addon.port, addon.tls_port, settings))}

    async def apply(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        await self._configure(addon, operation, password, addon.target_settings)
        if not addon.target_settings.get("force_tls"):
            return StepResult(f"plaintext served again on {addon.address}:{addon.port}; redis.conf rewritten")
        dropped = await self.redis.disconnect_plaintext_clients(endpoint(addon.previous_node, password), addon.port)
        return StepResult(f"plaintext port {addon.port} closed, {dropped} plaintext connection"
                          f"{'' if dropped == 1 else 's'} dropped; TLS only, on {addon.tls_port}; redis.conf rewritten")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        addon.mark_settings_changed(operation_id=operation.id)
        scheme = "rediss://" if addon.settings.get("force_tls") else "redis://"
        return StepResult(f"REDIS_URL and SCALINGO_REDIS_URL are now the {scheme} URL", changes=(addon,))

    async def restart_app(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        return StepResult(await restart_app(self.events, self.restarter, addon, password))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        if operation.past_point_of_no_return:
            return StepResult(f"nothing undone: the setting is applied; only the app's restart failed ({error})")
        return await super().compensate(operation, error)
