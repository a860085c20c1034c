"""At start the inventory and the read models catch up from one read of the log, each event decoded once
for both. On a store whose read models are new (a first start, another process joining a shared store, a
restored control plane) reading the log is most of a start, and each used to read all of it."""

from __future__ import annotations

import structlog

from engine.follower import Follower
from engine.inventory_keeper import InventoryKeeper
from engine.store import EventLog

log = structlog.get_logger("start")


async def catch_up_together(events: EventLog, inventory: InventoryKeeper, views: Follower) -> None:
    await inventory.read_checkpoint()
    position = min(inventory.inventory.position, await views.read_position())
    read = 0
    while batch := await events.select(position, 1000):
        inventory.take(batch)
        await views.take(batch)
        position, read = batch[-1][0], read + len(batch)
    log.info("inventory and read models caught up", inventory_at=inventory.inventory.position,
             read_models_at=views.position, events_read=read)
