"""The inventory's life: read back from its checkpoint at start and caught up from the log after
its position; kept current as events are saved; checkpointed every CHECKPOINT_EVERY_S when it
moved, and at stop. A checkpoint lost in a crash only means more of the log is read at start."""

from __future__ import annotations

import asyncio
import contextvars

import structlog

from engine.inventory import Inventory
from engine.ports import Checkpoints
from engine.store import EventLog

log = structlog.get_logger("inventory")

NAME = "inventory"
CHECKPOINT_EVERY_S = 30.0


class InventoryKeeper:
    def __init__(self, events: EventLog, inventory: Inventory, checkpoints: Checkpoints | None):
        self.events, self.inventory, self.checkpoints = events, inventory, checkpoints
        self._written_at_position = 0
        self._task: asyncio.Task | None = None
        events.on_saved(inventory.apply_at)

    async def load(self) -> int:
        """Read back the checkpoint and catch up from the log; returns how many events were read."""
        await self.read_checkpoint()
        read = 0
        while batch := await self.events.select(self.inventory.position, 1000):
            self.take(batch)
            read += len(batch)
        log.info("inventory loaded", position=self.inventory.position, events_read=read)
        return read

    async def read_checkpoint(self) -> None:
        if self.checkpoints is not None:
            kept = Inventory.from_state(await asyncio.to_thread(self.checkpoints.load, NAME))
            if kept.position > await self.events.max_position():
                # Ahead of the log (the event store was restored from an older copy, or another one
                # configured): it describes another history, so the log is read from its start.
                log.warning("inventory checkpoint ahead of the log: dropped", checkpoint=kept.position)
                kept = Inventory()
            self.inventory.take_state_of(kept)
            self._written_at_position = kept.position

    def take(self, batch) -> None:
        """A batch of (position, event) read from the log; what the inventory holds already is passed over."""
        for position, event in batch:
            self.inventory.apply_at(position, event)

    def start(self) -> None:
        if self.checkpoints is not None:
            self._task = asyncio.create_task(self._run(), name="inventory-checkpoint", context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await self.checkpoint()
            except Exception as error:  # a full disk, say: the log still has everything; tried again later
                log.warning("inventory checkpoint not written", error=str(error))

    async def checkpoint(self) -> None:
        if self.checkpoints is None or self.inventory.position == self._written_at_position:
            return
        state = self.inventory.state()
        await asyncio.to_thread(self.checkpoints.save, NAME, state)
        self._written_at_position = state["position"]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.checkpoint()
