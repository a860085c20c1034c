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
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, PersistenceError
from eventsourcing.utils import get_topic

from engine import audit
from engine.ports import TransientError

log = structlog.get_logger("event-store")

__all__ = ["EventLog", "Ledger", "AggregateNotFoundError", "IntegrityError", "EventStoreUnavailable"]


class EventStoreUnavailable(TransientError):
    """The event store refused a write (its disk full or read-only, the database gone): nothing of
    that save was recorded, so nothing of the command happened; it works again once the store does."""


# The store did not answer: SQLite's file refused, or PostgreSQL down, unreachable or dropping the connection
# (psycopg's OperationalError and InterfaceError, as eventsourcing wraps them).
UNREACHABLE = (OperationalError, InterfaceError)
DISK_WORDS = ("full", "readonly", "read-only")  # SQLite's "database or disk is full", "attempt to write a readonly database"


def unavailable_text(doing: str, error: str) -> str:
    """What a caller reads: the disk hint only where the disk is what refused ("database is locked",
    "disk I/O error" or "no such table" are not cured by room on a disk)."""
    what = "record anything" if doing == "write" else "be read"
    if any(word in error.lower() for word in DISK_WORDS):
        return (f"the event store cannot {what} now ({error}): nothing was changed; try again once its disk has "
                "room (or is writable) again")
    return f"the event store cannot {what} now ({error}): nothing was changed; the engine's log says more"


def replayed(aggregate, events):
    """eventsourcing's project_aggregate, less its assert of each event against a runtime Protocol: that
    isinstance took a fifth of a replay's time (profiled in the sagas' crash tests). The log's events are
    the library's own, which all mutate."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def where(env: dict) -> str:
    """Where the store is, for the operator's log and the start-up error: never its password."""
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return f"PostgreSQL {env.get('POSTGRES_HOST')}:{env.get('POSTGRES_PORT') or 5432}/{env.get('POSTGRES_DBNAME')}"
    return f"SQLite {env.get('SQLITE_DBNAME')}"


def without_password(env: dict, text: str) -> str:
    """psycopg's messages name the server and the user, not the password; this holds even if one ever did."""
    password = env.get("POSTGRES_PASSWORD") or ""
    return text.replace(password, "[password hidden]") if len(password) >= 3 else text


# What the operator does about each refusal PostgreSQL gives at the start, first match wins (psycopg's texts).
OPENING_ADVICE = (
    (("password authentication failed", "no pg_hba.conf entry", "role \""),
     "check REDIS_ADDONS_POSTGRES_USER and its password (REDIS_ADDONS_POSTGRES_PASSWORD or "
     "REDIS_ADDONS_POSTGRES_PASSWORD_FILE), and that pg_hba.conf lets that user in from this machine"),
    (("does not exist",), "create that database (e.g. `createdb`), or correct REDIS_ADDONS_POSTGRES_DBNAME: the "
                          "engine makes its tables at its first start, not the database"),
    (("permission denied",), "grant that user CREATE on the database's public schema: the engine makes its tables "
                             "at its first start"),
)


def not_opened_text(env: dict, cause: str) -> str:
    lowered = cause.lower()
    advice = next((advice for words, advice in OPENING_ADVICE if any(w in lowered for w in words)),
                  "check that PostgreSQL runs there and that REDIS_ADDONS_POSTGRES_HOST and REDIS_ADDONS_POSTGRES_PORT "
                  "name it")
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        advice = "check that the data directory is writable and its disk has room"
    return f"the engine cannot start: the event store ({where(env)}) cannot be opened: {cause}; {advice}"


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Ledger(Application):
    """The one eventsourcing application holding every aggregate of an installation."""

    name = "RedisAddons"
    log_section_size = 1000


class EventLog:
    def __init__(self, env: dict, diagnose: Callable[[], str | None] | None = None):
        """`diagnose`, on PostgreSQL (adapters/postgres/reachability.py): why a connection of its own is refused,
        None when it is not; the pool itself only says it "couldn't get a connection after 1.00 sec"."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-store")
        self._env = env
        self._diagnose = diagnose
        self._app: Ledger | None = None
        self._waiters: set[asyncio.Event] = set()
        self._listeners: list[Callable] = []
        # Several engine processes may write one PostgreSQL store: the listeners are then told of every event of
        # the log, theirs or another process's, in the log's order (tell_new), not only of this process's saves.
        self.shared = env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
        self._told: int | None = None  # shared: the last position the listeners were told of
        self._telling: asyncio.Lock | None = None

    async def open(self) -> None:
        """The tables are made at the first start. A store that cannot be opened raises EventStoreUnavailable
        saying where it is, why, and what to do; on PostgreSQL a refused connection is found before the
        Ledger's pool is made (a pool that cannot connect retries in its own threads for minutes)."""
        cause = await asyncio.to_thread(self._diagnose) if self._diagnose else None
        if cause is None:
            try:
                self._app = await self._run(Ledger, self._env)
            except PersistenceError as error:
                cause = first_line(error)
        if cause is not None:
            text = not_opened_text(self._env, without_password(self._env, cause))
            log.error("the event store cannot be opened", error=text)
            raise EventStoreUnavailable(text)
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

    async def _call(self, doing: str, fn, *args):
        try:
            return await self._run(fn, *args)
        except UNREACHABLE as error:
            raise await self._unavailable(doing, error) from None

    async def get(self, aggregate_id: UUID, version: int | None = None):
        """The aggregate now, or as it was at `version` (1: as created)."""
        return await self._call("read", lambda: self._app.repository.get(aggregate_id, version=version,
                                                                         projector_func=replayed))

    async def exists(self, aggregate_id: UUID) -> bool:
        return await self._call("read", self._app.repository.__contains__, aggregate_id)

    async def save(self, *aggregates) -> list:
        """Save atomically; a stale aggregate raises IntegrityError (reload and decide again), a store
        that cannot write raises EventStoreUnavailable (SQLite rolls the whole save back)."""
        audit.stamp(*aggregates)  # here, on the event loop: the store's thread has not this task's context
        recordings = await self._call("write", self._app.save, *aggregates)
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
                            try:
                                listener(position, domain_event)
                            except Exception:  # one listener's bug must not stop every later save
                                log.exception("an event listener failed", position=position)
                        self._told = position
            except EventStoreUnavailable:
                pass  # the next save's or poll's call goes on from the last told

    async def select(self, after: int, limit: int = 500, of: tuple[type, ...] = ()) -> list[tuple[int, object]]:
        """Notifications after position `after`, decoded into domain events; only events of the classes `of`
        when given (the others are passed over by the store, never decoded)."""
        topics = [get_topic(cls) for cls in of]

        def select():
            notifications = self._app.notification_log.select(after + 1, min(limit, Ledger.log_section_size),
                                                              topics=topics)
            return [(n.id, self._app.mapper.to_domain_event(n)) for n in notifications]

        return await self._call("read", select)

    async def _unavailable(self, doing: str, error: PersistenceError) -> EventStoreUnavailable:
        # Where the store is goes to the operator's log only: a client (maybe a scoped token's) learns no
        # server path, address or user; the cause PostgreSQL gave is said there too, never the password.
        cause = str(error)
        if self._diagnose and "couldn't get a connection" in cause:  # the pool's words: ask PostgreSQL why
            cause = f"{cause}: {await asyncio.to_thread(self._diagnose) or 'it answers again'}"
        log.error(f"the event store refused a {doing}", error=without_password(self._env, cause),
                  where=where(self._env))
        if self.shared:
            return EventStoreUnavailable(unavailable_text(doing, "PostgreSQL did not answer"))
        return EventStoreUnavailable(unavailable_text(doing, str(error)))

    async def select_raw(self, after: int, limit: int = 500):
        return await self._call(
            "read", lambda: list(self._app.notification_log.select(after + 1, min(limit, Ledger.log_section_size))))

    async def max_position(self) -> int:
        return await self._call("read", lambda: self._app.recorder.max_notification_id() or 0)

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
