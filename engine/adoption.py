"""Addons recorded before clusters existed get their Cluster, formed from what their events said.

The cluster's ID is derived from the addon's name and its events are appended (Formed with
`adopted`, then NodeAdopted for each node the addon holds), so adopting twice is refused by the
event store itself and the history written by the older release stays as it was.
"""

from __future__ import annotations

import structlog

from domain.addon import Addon
from engine.clusters import adopted_cluster
from engine.inventory import Inventory
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("adoption")

async def adopt_clusters(events: EventLog, inventory: Inventory) -> list[str]:
    adopted = []
    for name in inventory.addons_without_cluster:
        addon: Addon = await events.get(Addon.id_for(name))
        if addon.status == "removed":
            continue
        try:
            cluster = adopted_cluster(addon, inventory.legacy_holdings(name),
                                      cleanup_pending=name in inventory.unfinished.values())
            await events.save(cluster)
        except IntegrityError:  # adopted meanwhile by another start
            continue
        adopted.append(name)
    if adopted:
        log.info("clusters adopted for addons recorded before clusters existed", addons=adopted)
    return adopted
