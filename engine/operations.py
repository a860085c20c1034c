"""The one way an operation starts.

The aggregate's command has checked its rule and recorded the change (the addon is now held by
the operation); here the Operation and those changes are saved atomically, the saga is
submitted, and the read models are caught up so that the caller reads its own write.
"""

from __future__ import annotations

import structlog

from domain.errors import AddonBusy
from domain.operation import Operation
from engine.claims import AddonClaims
from engine.follower import Follower
from engine.saga import Coordinator
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("operations")


class OperationStarter:
    def __init__(self, events: EventLog, coordinator: Coordinator, follower: Follower, claims: AddonClaims):
        self.events, self.coordinator, self.follower, self.claims = events, coordinator, follower, claims

    async def start(self, operation: Operation, *changed) -> Operation:
        """Record and run `operation`, and return once the read models show it."""
        await self.caught_up(await self.record(operation, *changed))
        return operation

    async def record(self, operation: Operation, *changed) -> int:
        """Record and run `operation`; returns the log position the read models must reach to show it.
        An aggregate changed meanwhile (optimistic concurrency: another command or the scheduler started
        an operation on the addon) is AddonBusy, and nothing is saved."""
        try:
            async with self.claims.claim(operation.addon):  # not while the watcher acts on its nodes
                recordings = await self.events.save(operation, *changed)
        except IntegrityError:
            raise AddonBusy(f"addon {operation.addon} changed while this was asked (an operation started on it, or "
                            "something was observed of its nodes): try again") from None
        log.info("operation started", kind=operation.kind, addon=operation.addon, operation_id=str(operation.id))
        self.coordinator.submit(operation.id)
        return recordings[-1].notification.id

    async def caught_up(self, position: int) -> None:
        """Read your writes: what was recorded up to `position` shows in the read models."""
        await self.follower.wait_until(position)
