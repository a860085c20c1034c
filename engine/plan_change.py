"""Plan change as a saga (reference, "Changing Plans"): the database is stopped, then restarted
on a new host with the new plan's parameters, data intact; finally the app is restarted.

stop        pause writes, save, count the keys of each database (and those with an expiry), stop the node
start_new   create the node on the new host, copy the data files byte for byte, start it
wait_ready  the new node answers PING with the addon's password
verify      the new node holds the saved keys (less any whose expiry passed meanwhile); the file's
            bytes were hashed as they streamed and Redis checked its CRC64 as it loaded it
publish     the addon is on the new plan and host: the app's environment changes
cleanup     the old container and volume are removed
restart_app the app is restarted with its new environment

Before `publish`, a failure brings the database back on the old host with the old plan.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import VersionCatalog
from domain.keyspace import differences
from domain.operation import Operation
from engine.app_restart import restart_app
from engine.clusters import cluster_of, node_placed_by, serving_node
from engine.node_swap import NodeSwap
from engine.nodes import endpoint, node_spec
from engine.ports import AppRestarter, Certificates, EffectError, RedisAdmin, Runtime, SecretStore
from engine.saga import StepResult
from engine.store import EventLog


class PlanChange(NodeSwap):
    kind = "change_plan"
    deadlines = {"stop": 900.0, "start_new": 900.0, "verify": 600.0}  # saving and copying a large dataset

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 versions: VersionCatalog, restarter: AppRestarter, certificates: Certificates, stop_timeout_s: int = 60):
        self.events, self.runtime, self.redis, self.secrets = events, runtime, redis, secrets
        self.versions, self.restarter, self.certificates, self.stop_timeout_s = versions, restarter, certificates, stop_timeout_s

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        password = self.secrets.password_for(addon.name)
        return await getattr(self, step)(addon, operation, password)

    async def start_new(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster = await cluster_of(self.events, addon.name)
        new, old = node_placed_by(cluster, operation), serving_node(cluster)
        if await self.runtime.is_running(new["host"], new["container"]):
            return StepResult(f"{new['container']} already running on {new['host']}")
        await self.runtime.create_node(self.new_node_spec(addon, new, operation, password))
        # An RDB file carries a CRC64 that Redis checks as it loads (wait_ready fails on a bad copy);
        # AOF files carry none, so then the copy is read back and compared file by file.
        copied = await self.runtime.copy_data(old["host"], old["container"], new["host"], new["container"], "/data",
                                              read_back=bool(addon.settings.get("aof")))
        await self.runtime.start_node(new["host"], new["container"])
        files = "1 data file" if copied["files"] == 1 else f"{copied['files']} data files"
        return StepResult(
            f"{files} ({copied['bytes']} bytes{', read back identical' if copied['read_back'] else ''}) copied to {new['host']}; "
            f"started with {new['memory_mib']} MiB on {new['address']}:{new['port']}",
            outcome=copied,
        )

    def new_node_spec(self, addon: Addon, node: dict, operation: Operation, password: str) -> NodeSpec:
        return node_spec(addon, node, operation, password, self.versions, self.certificates)

    async def verify(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        expected = operation.outcome("stop")
        found = await self.redis.keyspace(endpoint(await self.new_node(addon, operation), password))
        if problems := differences(expected, found):
            raise EffectError("the new node's data differs: " + "; ".join(problems))
        return StepResult(f"{sum(found['keys'].values())} keys, as saved")

    async def publish(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        cluster, replaced = await self.promote_new_node(addon, operation, f"plan change to {addon.target['plan']}")
        addon.mark_plan_changed(operation_id=operation.id)
        return StepResult(f"now {addon.plan} on {serving_node(cluster)['host']}; REDIS_URL and SCALINGO_REDIS_URL "
                          "changed", outcome=replaced, changes=(addon, cluster))

    async def restart_app(self, addon: Addon, operation: Operation, password: str) -> StepResult:
        return StepResult(await restart_app(self.events, self.restarter, addon, password))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if operation.past_point_of_no_return:
            # The new node serves the app already: undoing would lose its writes.
            return StepResult(f"nothing undone: the addon runs on its new plan ({error})")
        cluster = await self.bring_back_old_node(addon, operation)
        addon.mark_plan_change_failed(operation_id=operation.id, reason=error)
        return StepResult(
            f"back on {serving_node(cluster)['host']} with plan {addon.plan}: new node removed, old node running",
            changes=(addon, cluster)
        )
