"""The maintenance of one addon, recorded and started: an upgrade to the version it runs, with the
upgrade's saga and steps, under a kind of its own so that the timeline says what it was. The new nodes are
made from the version's tag, which names the current build now."""

from __future__ import annotations

from datetime import datetime

from domain.addon import Addon
from domain.catalog import PlanCatalog
from domain.operation import POINTS_OF_NO_RETURN, STEPS, Operation
from engine.upgrade import new_volume
from engine.clusters import cluster_of, data_node, redundant_pair, serving_node
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.plan_requests import place_replacements
from engine.store import EventLog

# Each maintenance kind -> the upgrade whose saga and steps it takes (engine/bootstrap.py wires the same saga).
KINDS = {"maintenance": "upgrade", "maintenance_cluster": "upgrade_cluster"}


def maintenance_operation(kind: str, addon: Addon, subject: str) -> Operation:
    """The upgrade's plan as it is now, recorded on the operation (a recorded one replays as it was)."""
    upgrade = KINDS[kind]
    return Operation(kind=kind, addon=addon.name, app=addon.app, subject=subject, steps=list(STEPS[upgrade]),
                     no_return=list(POINTS_OF_NO_RETURN.get(upgrade, [])))


class MaintenanceRequests:
    def __init__(self, events: EventLog, plans: PlanCatalog, starter: OperationStarter, placing: Placing):
        self.events, self.plans, self.starter, self.placing = events, plans, starter, placing

    async def start(self, addon: Addon, window_opened: datetime | None = None) -> Operation:
        """`window_opened`: the scheduler starts it in the addon's window that opened then."""
        cluster = await cluster_of(self.events, addon.name)
        if self.plans.get(addon.plan).is_cluster:
            return await self._replace_data_nodes(addon, cluster, window_opened)
        operation = maintenance_operation("maintenance", addon, subject=addon.redis_version)
        node = f"redis-addons-{addon.name}-{operation.id.hex[:8]}"
        volume = new_volume(addon, self.plans.get(addon.plan), serving_node(cluster), node)  # as an upgrade's
        addon.request_maintenance(node, volume, operation.id, window_opened=window_opened)
        cluster.place_node(data_node(addon, addon.target, operation.id))
        return await self.starter.start(operation, addon, cluster)

    async def _replace_data_nodes(self, addon: Addon, cluster, window_opened: datetime | None) -> Operation:
        """A Business addon's data nodes replaced one at a time with no downtime, as its upgrade replaces
        them (engine/cluster_upgrade.py): the hosts need room for one more node at a time."""
        primary, replica = redundant_pair(cluster, addon.name, "its maintenance can run")
        async with self.placing.held() as placer:
            # The subject is the primary when it was asked, as the rolling replacement wants it.
            operation = maintenance_operation("maintenance_cluster", addon, subject=primary["id"])
            new = place_replacements(placer, addon, cluster, (primary, replica), operation, addon.memory_mib,
                                     version=addon.redis_version)
            addon.request_maintenance(new[0]["container"], new[0]["volume"], operation.id, host=new[0]["host"],
                                      window_opened=window_opened)
            position = await self.starter.record(operation, addon, cluster)
        await self.starter.caught_up(position)
        return operation
