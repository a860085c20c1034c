"""What the event log answers directly: an operation and its wait, pages of events, and a replay of
every read model to check them (a mixin of the Engine: self.events, self.follower, self.coordinator)."""

from __future__ import annotations

import asyncio
from uuid import UUID

from domain.errors import UnknownOperation
from domain.operation import Operation
from engine.described import describe_operation, event_as_dict
from engine.follower import apply_batch
from engine.store import AggregateNotFoundError


class LogQueries:
    async def wait_for_operation(self, operation_id: str, timeout: float = 120.0) -> dict:
        op_id = self._operation_id(operation_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            operation = await self._the_operation(op_id, operation_id)
            left = deadline - asyncio.get_running_loop().time()
            if operation.is_finished or left <= 0:
                # Read your writes: what the operation did shows in the read models on return.
                await self.follower.wait_until(await self.events.max_position())
                return describe_operation(operation)
            # Driven here: wait for its saga. Driven elsewhere (another process): poll.
            if not await self.coordinator.wait(op_id, timeout=left):
                await self.events.wait_for_save(min(left, 0.5))

    async def operation(self, operation_id: str) -> dict:
        return describe_operation(await self._the_operation(self._operation_id(operation_id), operation_id))

    async def _the_operation(self, op_id: UUID, operation_id: str) -> Operation:
        """The operation of that ID; another aggregate's ID (an addon's, an app's: uuid5 of names anyone can
        compute) is no operation's, answered as one that does not exist (not a 500 telling it exists)."""
        try:
            operation = await self.events.get(op_id)
        except AggregateNotFoundError:
            operation = None
        if not isinstance(operation, Operation):
            raise UnknownOperation(f"unknown operation {operation_id}")
        return operation

    @staticmethod
    def _operation_id(text: str) -> UUID:
        try:
            return UUID(str(text))
        except ValueError:
            raise UnknownOperation(f"unknown operation {text!r}: not an operation id") from None

    async def event_page(self, after: int = 0, limit: int = 100) -> list[dict]:
        """Events after position `after`, as JSON-ready dicts (they hold no secret)."""
        return [event_as_dict(n, e) for n, e in await self.events.select(after, limit)]

    async def wait_for_events(self, timeout: float) -> None:
        """Return when this process records an event, or after `timeout` (other writers)."""
        await self.events.wait_for_save(timeout)

    async def replay(self) -> dict:
        """Rebuild every read model from the log into a fresh store and compare with the live one."""
        live = await asyncio.to_thread(self.views.snapshot)
        fresh = self._views_factory()
        after = 0
        while after < live["position"] and (batch := await self.events.select(after, 500)):
            await asyncio.to_thread(apply_batch, fresh, [(n, e) for n, e in batch if n <= live["position"]])
            after = batch[-1][0]
        rebuilt = await asyncio.to_thread(fresh.snapshot)
        tables = sorted(set(live["tables"]) | set(rebuilt["tables"]))
        differences = [t for t in tables if live["tables"].get(t) != rebuilt["tables"].get(t)]
        return {
            "position": live["position"],
            "matches": not differences and rebuilt["position"] == live["position"],
            "differences": differences,
            "rows": {t: len(rows) for t, rows in rebuilt["tables"].items()},
        }
