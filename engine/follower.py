"""Keeps read models in step with the event log, by polling it (SQLite has no subscriptions),
woken early after each save. Each read model keeps its own tracking position."""

from __future__ import annotations

import asyncio
import time

import structlog

from engine.ports import ReadModels, TransientError
from engine.store import EventLog

log = structlog.get_logger("follower")

LOG_AGAIN_S = 30.0  # an update failing on, with the same error, is logged again this often


class ReadModelsBehind(TransientError):
    """What was asked is recorded, but the read models cannot show it yet (their disk full): they
    catch up on their own once they can write."""


def apply_batch(views: ReadModels, batch) -> None:
    """A batch of (position, event) in one transaction of the read models; if that fails, one event at a
    time, so what precedes a failing event is kept and its error is the one raised, as without batches."""
    try:
        with views.transaction():
            for notification_id, event in batch:
                views.process(notification_id, event)
    except Exception:
        for notification_id, event in batch:
            views.process(notification_id, event)


class Follower:
    def __init__(self, events: EventLog, views: ReadModels, poll_s: float = 0.5):
        self._events, self._views, self._poll_s = events, views, poll_s
        self._task: asyncio.Task | None = None
        self._caught_up = asyncio.Condition()
        self.position = 0
        self.failing: str | None = None  # why the read models cannot write, while they cannot
        self._said: tuple[str, float] | None = None  # the error last logged, and when

    async def catch_up(self) -> int:
        """Process everything recorded so far; return the position reached."""
        await self.read_position()
        while batch := await self._events.select(self.position, 500):
            await self.take(batch)
        async with self._caught_up:
            self._caught_up.notify_all()
        return self.position

    async def read_position(self) -> int:
        self.position = await asyncio.to_thread(self._views.position)
        return self.position

    async def take(self, batch) -> None:
        """A batch of (position, event) read from the log: what the read models hold already is passed over."""
        if fresh := [(position, event) for position, event in batch if position > self.position]:
            await asyncio.to_thread(self._process, fresh)
            self.position = fresh[-1][0]

    def _process(self, batch) -> None:
        apply_batch(self._views, batch)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="read-model-follower")

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
                self.failing = self._said = None
            except Exception as error:
                # Only their store refusing a write is a passing fault a command is told of (ReadModelsBehind);
                # anything else (a projection's bug, an event breaking a constraint) is not: a wait for it
                # times out as any unexpected error does.
                self.failing = self._views.cannot_write(error)
                self._say(error)
            await self._events.wait_for_save(self._poll_s)

    def _say(self, error: Exception) -> None:
        """Logged once per distinct error, then every LOG_AGAIN_S while it lasts (not at each poll)."""
        text, now = f"{type(error).__name__}: {error}", time.monotonic()
        if self._said is not None and self._said[0] == text and now - self._said[1] < LOG_AGAIN_S:
            return
        self._said = (text, now)
        if self.failing is not None:
            log.error("the read models cannot write; they catch up once they can", error=self.failing)
        else:
            log.exception("read model update failed; retrying", error=text)

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
