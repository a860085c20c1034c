"""Taking over what a dead process drove (several engine processes on one event store).

Every process follows the log (the inventory and the leases' book hear of every event, whoever recorded it:
engine/store.py tell_new, polled here) and, once per renewal period, submits to its coordinator each
unfinished operation that nobody drives: its lease has expired, or it never had one (its process died
between recording it and taking it) and has been seen unfinished for a whole lease. The coordinator takes
the lease first (engine/saga.py): of several processes trying, one gets it, and it resumes the operation
from its recorded steps, as a restart would.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from uuid import UUID

import structlog

from domain.lease import operation_lease
from engine.inventory import Inventory

log = structlog.get_logger("takeover")

POLL_S = 0.5  # how often the log is read for what other processes recorded


class Takeover:
    def __init__(self, events, leases, inventory: Inventory, coordinator, clock: Callable[[], float] = time.time):
        self.events, self.leases, self.inventory, self.coordinator, self.clock = events, leases, inventory, coordinator, clock
        self._first_seen: dict[UUID, float] = {}  # an unfinished operation with no lease in the log: since when
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if self.leases.shared and not self._tasks:
            self._tasks = [asyncio.create_task(self._follow(), name="log-teller", context=contextvars.Context()),
                           asyncio.create_task(self._sweep(), name="takeover", context=contextvars.Context())]

    async def _follow(self) -> None:
        while True:
            try:
                await self.events.tell_new()
            except Exception as error:  # told again from where it stopped at the next poll
                log.warning("reading the log failed", error=str(error) or type(error).__name__)
            await asyncio.sleep(POLL_S)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.leases.renew_s)
            try:
                self.sweep()
            except Exception:
                log.exception("takeover sweep failed; tried again")

    def sweep(self) -> list[UUID]:
        """Submit each unfinished operation nobody drives; returns those submitted."""
        now, submitted = self.clock(), []
        unfinished = set(self.inventory.unfinished)
        for operation_id in unfinished:
            if self.coordinator.is_driving(operation_id) or not self._may_be_free(operation_id, now):
                continue
            log.info("taking over an operation nobody drives", operation_id=str(operation_id),
                     addon=self.inventory.unfinished.get(operation_id))
            self.coordinator.submit(operation_id)
            submitted.append(operation_id)
        for gone in [o for o in self._first_seen if o not in unfinished]:
            del self._first_seen[gone]
        self.leases.forget_seen({operation_lease(o) for o in unfinished} | {"duties"})
        return submitted

    def _may_be_free(self, operation_id: UUID, now: float) -> bool:
        seen = self.leases.seen(operation_lease(operation_id))
        if seen is not None:
            return seen[1] <= now
        return now - self._first_seen.setdefault(operation_id, now) >= self.leases.lease_s

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
