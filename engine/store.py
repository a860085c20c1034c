"""The event store, reached through one small async facade.

eventsourcing 9.5 is synchronous, so every call runs on one worker thread: the event
loop never waits on disk, and the store sees one caller at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, OperationalError

from engine import audit
from engine.ports import TransientError

log = structlog.get_logger("event-store")

__all__ = ["EventLog", "Ledger", "AggregateNotFoundError", "IntegrityError", "EventStoreUnavailable"]


class EventStoreUnavailable(TransientError):
    """The event store refused a write (its disk full or read-only, the database gone): nothing of
    that save was recorded, so nothing of the command happened; it works again once the store does."""


DISK_WORDS = ("full", "readonly", "read-only")  # SQLite's "database or disk is full", "attempt to write a readonly database"


def unavailable_text(doing: str, error: str) -> str:
    """What a caller reads: the disk hint only where the disk is what refused ("database is locked",
    "disk I/O error" or "no such table" are not cured by room on a disk)."""
    what = "record anything" if doing == "write" else "be read"
    if any(word in error.lower() for word in DISK_WORDS):
        return (f"the event store cannot {what} now ({error}): nothing was changed; try again once its disk has "
                "room (or is writable) again")
    return f"the event store cannot {what} now ({error}): nothing was changed; the engine's log says more"


class Ledger(Application):
    """The one eventsourcing application holding every aggregate of an installation."""

    name = "RedisAddons"
    log_section_size = 1000


class EventLog:
    def __init__(self, env: dict):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-store")
        self._env = env
        self._app: Ledger | None = None
        self._waiters: set[asyncio.Event] = set()
        self._listeners: list[Callable] = []
        # Several engine processes may write one PostgreSQL store: the listeners are then told of every event of
        # the log, theirs or another process's, in the log's order (tell_new), not only of this process's saves.
        self.shared = env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
        self._told: int | None = None  # shared: the last position the listeners were told of
        self._telling: asyncio.Lock | None = None

    async def open(self) -> None:
        self._app = await self._run(Ledger, self._env)
        if self.shared:  # the listeners read the log up to here as they start (InventoryKeeper.load...)
            self._told, self._telling = await self.max_position(), asyncio.Lock()

    async def close(self) -> None:
        """Idempotent: an embedder may stop an engine twice."""
        if self._app is not None:
            app, self._app = self._app, None
            await self._run(app.close)
        self._pool.shutdown(wait=True)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def on_saved(self, listener: Callable) -> None:
        """Call `listener(position, domain_event)` for every event this process saves."""
        self._listeners.append(listener)

    async def get(self, aggregate_id: UUID, version: int | None = None):
        """The aggregate now, or as it was at `version` (1: as created)."""
        try:
            return await self._run(lambda: self._app.repository.get(aggregate_id, version=version))
        except OperationalError as error:
            raise self._unavailable("read", error) from None

    async def exists(self, aggregate_id: UUID) -> bool:
        return await self._run(self._app.repository.__contains__, aggregate_id)

    async def save(self, *aggregates) -> list:
        """Save atomically; a stale aggregate raises IntegrityError (reload and decide again), a store
        that cannot write raises EventStoreUnavailable (SQLite rolls the whole save back)."""
        audit.stamp(*aggregates)  # here, on the event loop: the store's thread has not this task's context
        try:
            recordings = await self._run(self._app.save, *aggregates)
        except OperationalError as error:
            raise self._unavailable("write", error) from None
        if self.shared:
            await self.tell_new()
        else:
            for recording in recordings:
                for listener in self._listeners:
                    listener(recording.notification.id, recording.domain_event)
        for waiter in self._waiters:
            waiter.set()
        return recordings

    async def tell_new(self) -> None:
        """Shared store: tell the listeners of every event recorded since the last told, in the log's order
        (PostgreSQL commits notification IDs in order); called after each save here and polled (engine/takeover.py)."""
        if self._telling is None:
            return
        async with self._telling:
            try:
                while batch := await self.select(self._told, 500):
                    for position, domain_event in batch:
                        for listener in self._listeners:
                            listener(position, domain_event)
                        self._told = position
            except EventStoreUnavailable:
                pass  # the next save's or poll's call goes on from the last told

    async def select(self, after: int, limit: int = 500) -> list[tuple[int, object]]:
        """Notifications after position `after`, decoded into domain events."""

        def select():
            notifications = self._app.notification_log.select(after + 1, min(limit, Ledger.log_section_size))
            return [(n.id, self._app.mapper.to_domain_event(n)) for n in notifications]

        try:
            return await self._run(select)
        except OperationalError as error:
            raise self._unavailable("read", error) from None

    def _unavailable(self, doing: str, error: OperationalError) -> EventStoreUnavailable:
        # The file goes to the operator's log only: a client (maybe a scoped token's) learns no server path.
        log.error(f"the event store refused a {doing}", error=str(error), where=self._env.get("SQLITE_DBNAME"))
        return EventStoreUnavailable(unavailable_text(doing, str(error)))

    async def select_raw(self, after: int, limit: int = 500):
        return await self._run(
            lambda: list(self._app.notification_log.select(after + 1, min(limit, Ledger.log_section_size)))
        )

    async def max_position(self) -> int:
        return await self._run(lambda: self._app.recorder.max_notification_id() or 0)

    async def wait_for_save(self, timeout: float) -> None:
        """Sleep until something is saved or `timeout` passes (followers poll with this)."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives
            # as the waiter is set, and a follower being stopped would then run on forever.
            async with asyncio.timeout(timeout):
                await waiter.wait()
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
