"""Keeps read models in step with the event log, by polling it (SQLite has no subscriptions),
woken early after each save. Each read model keeps its own tracking position."""

from __future__ import annotations

import asyncio

import structlog

from engine.ports import ReadModels, TransientError
from engine.store import EventLog

log = structlog.get_logger("follower")


class ReadModelsBehind(TransientError):
    """What was asked is recorded, but the read models cannot show it yet (their disk full): they
    catch up on their own once they can write."""


class Follower:
    def __init__(self, events: EventLog, views: ReadModels, poll_s: float = 0.5):
        self._events, self._views, self._poll_s = events, views, poll_s
        self._task: asyncio.Task | None = None
        self._caught_up = asyncio.Condition()
        self.position = 0
        self.failing: str | None = None  # why the read models could not be updated, while they cannot

    async def catch_up(self) -> int:
        """Process everything recorded so far; return the position reached."""
        self.position = await asyncio.to_thread(self._views.position)
        while True:
            batch = await self._events.select(self.position, 500)
            if not batch:
                break
            await asyncio.to_thread(self._process, batch)
            self.position = batch[-1][0]
        async with self._caught_up:
            self._caught_up.notify_all()
        return self.position

    def _process(self, batch) -> None:
        for notification_id, event in batch:
            self._views.process(notification_id, event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="read-model-follower")

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
                self.failing = None
            except Exception as error:
                self.failing = str(error) or type(error).__name__
                log.exception("read model update failed; retrying")
            await self._events.wait_for_save(self._poll_s)

    async def wait_until(self, position: int, timeout: float = 10.0) -> None:
        """Return once the read models include the event at `position`."""
        async def reached():
            async with self._caught_up:
                await self._caught_up.wait_for(lambda: self.position >= position)

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            if self.failing is None:
                raise
            raise ReadModelsBehind(f"recorded, but the read models cannot be updated now ({self.failing}): it shows "
                                   "once they can write again, with no need to ask again") from None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
