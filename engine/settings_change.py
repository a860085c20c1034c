"""A change of an addon's database settings as a saga (reference, "Persistence Mode", "Cache Mode"):

apply    the running server takes the new settings with CONFIG SET (turning AOF on waits until the
         AOF holds the data; turning it off, until dump.rdb does), then its redis.conf is rewritten
         from them so that a restart keeps them. In that order: a restart with `appendonly yes` in
         the file but no AOF written yet would start empty.
verify   CONFIG GET shows the new values
publish  the addon's settings are the new ones (a plan change or a restore derives the node from them;
         a Business cluster's replacement node, and a data node the healer starts again, too)

On a Business addon, apply and verify do so on every data node of its cluster
(engine/data_node_settings.py). A failure puts the former configuration file and values back.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import VersionCatalog
from domain.operation import Operation
from domain.redis_config import live_settings
from engine.ports import EffectError, RedisAdmin, Runtime, SecretStore
from engine.clusters import cluster_of, serving_node_of
from engine.data_node_settings import DataNodeSettings, replicated
from engine.nodes import endpoint, node_spec
from engine.saga import StepResult
from engine.store import EventLog


class SettingsChange:
    kind = "change_settings"
    deadlines = {"apply": 900.0}  # an AOF rewrite of a large dataset

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore, versions: VersionCatalog):
        self.events, self.runtime, self.redis, self.secrets, self.versions = events, runtime, redis, secrets, versions
        self.data_nodes = DataNodeSettings(runtime, redis, versions)

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return await getattr(self, step)(addon, operation, self.secrets.password_for(addon.name))

    def wanted(self, addon: Addon, settings: dict) -> dict[str, str]:
        """What CONFIG SET changes (and CONFIG GET then shows) for these settings."""
        return live_settings(settings)

    async def _configure(self, addon: Addon, operation: Operation, password: str, settings: dict) -> dict:
        wanted = self.wanted(addon, settings)
        node = await serving_node_of(self.events, addon.name)
        await self.redis.configure(endpoint(node, password), wanted)
        # Writing the file into an existing container only replaces the file (the certificate stays).
        await self.runtime.create_node(node_spec(addon, node, operation, password, self.versions, None, settings=settings))
        return wanted

    async def apply(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            wanted = self.wanted(addon, addon.target_settings)
            done = await self.data_nodes.apply(addon, cluster, operation, password, addon.target_settings)
            return StepResult(f"{shown(wanted)}; on each data node, live and in its redis.conf: {', '.join(done)}",
                              outcome=wanted)
        wanted = await self._configure(addon, operation, password, addon.target_settings)
        return StepResult(f"redis.conf rewritten; {shown(wanted)}", outcome=wanted)

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):
            checked = await self.data_nodes.verify(addon, cluster, password, addon.target_settings)
            return StepResult(f"{len(checked)} data node{'' if len(checked) == 1 else 's'} run with them: "
                              f"{', '.join(checked)}")
        wanted = self.wanted(addon, addon.target_settings)
        found = await self.redis.configuration(endpoint(await serving_node_of(self.events, addon.name), password),
                                               list(wanted))
        wrong = {k: found.get(k) for k, v in wanted.items() if found.get(k) != v}
        if wrong:
            raise EffectError(f"the server did not take the settings: {wrong}")
        return StepResult("the server runs with them")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        addon.mark_settings_changed(operation_id=operation.id)
        return StepResult("settings applied", changes=(addon,))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        password, cluster = self.secrets.password_for(addon.name), await cluster_of(self.events, addon.name)
        if replicated(cluster):
            await self.data_nodes.apply(addon, cluster, operation, password, addon.settings, require_one=False)
        else:
            await self._configure(addon, operation, password, addon.settings)
        addon.mark_settings_change_failed(operation_id=operation.id, reason=error)
        where = "each data node that runs and in each redis.conf" if replicated(cluster) else "the server and in its redis.conf"
        return StepResult(f"the former settings are back on {where}", changes=(addon,))


def shown(wanted: dict[str, str]) -> str:
    return ", ".join(f"{name} {value or 'off'}" for name, value in wanted.items())
