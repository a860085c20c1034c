"""Leases: which engine process drives each operation. (Which one runs the installation's duties is a lock that
records nothing, engine/duties.py: a lease renewed for as long as the installation lives would fill the log.)

One process on its store (SQLite: the data directory's lock keeps any other off) holds every lease at
once and records nothing: SoleLeases. Several processes on one PostgreSQL store take leases as events
in the shared log (domain/lease.py): EventLeases. A lease lasts `lease_s` and its holder renews it every
third of that; every save of an operation it drives carries a renewal of the operation's lease, so that
a driver whose lease was taken over (it stalled past its lease) cannot record one more step: the event
store refuses that save (optimistic concurrency), and the driver stops (LeaseLost). A holder whose
renewals fail (the store away) stops driving once its lease is within one renewal period of its end,
before anyone else may take it (clocks of the processes agree within that period).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from uuid import UUID

import structlog

from domain.lease import Lease, LeaseLost, operation_lease
from domain.operation import Operation
from engine.store import AggregateNotFoundError, EventLog, EventStoreUnavailable, IntegrityError

log = structlog.get_logger("leases")

__all__ = ["SoleLeases", "EventLeases", "LeaseLost", "leases_for"]


def leases_for(events: EventLog, holder: str, lease_s: float):
    """Leases in the log where several processes may share it (PostgreSQL); else this process holds them all."""
    return EventLeases(events, holder, lease_s) if events.shared else SoleLeases()


class SoleLeases:
    """The only process on its event store: every lease is its own at once, nothing recorded."""

    shared = False
    renew_s = 0.0

    async def take(self, name: str, on_lost: Callable[[], None] | None = None) -> bool:
        return True

    def drop(self, name: str) -> None:
        pass

    def holds(self, name: str) -> bool:
        return True

    def fenced(self, events):
        return events

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class EventLeases:
    """Leases recorded in a shared event log, held by `holder` (this process's identity)."""

    shared = True

    def __init__(self, events: EventLog, holder: str, lease_s: float, clock: Callable[[], float] = time.time):
        self._events, self.holder, self.lease_s, self._clock = events, holder, lease_s, clock
        self.renew_s = lease_s / 3
        self._held: dict[str, Lease | None] = {}  # name -> the lease as last saved; None: read it again first
        self._until: dict[str, float] = {}  # name -> when the lease last saved ends
        self._on_lost: dict[str, Callable[[], None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one save of a lease at a time in this process
        self._seen: dict[str, tuple[str, float]] = {}  # every lease the log told of: holder, until
        self._names: dict[UUID, str] = {}
        self._task: asyncio.Task | None = None
        self._watchdogs: dict[str, asyncio.TimerHandle] = {}  # name -> the stop of its driver if not renewed in time
        self._given_up = False  # this process's identity is another process's now: it holds nothing more
        events.on_saved(self._saw)

    # -- what the log says ------------------------------------------------------------------

    def _saw(self, position: int, event) -> None:
        if isinstance(event, Lease.Taken):
            self._names[event.originator_id] = event.name
            self._seen[event.name] = (event.holder, event.until)
        elif isinstance(event, Lease.TakenOver) and (name := self._names.get(event.originator_id)):
            self._seen[name] = (event.holder, event.until)
        elif isinstance(event, Lease.Renewed) and (name := self._names.get(event.originator_id)):
            self._seen[name] = (self._seen[name][0], event.until)

    def seen(self, name: str) -> tuple[str, float] | None:
        """The holder and end of `name` as the log last told this process; None if it told nothing."""
        return self._seen.get(name)

    def forget_seen(self, keep: set[str]) -> None:
        """Only the leases of what is still unfinished are worth remembering."""
        for name in [n for n in self._seen if n not in keep]:
            self._seen.pop(name)
            self._names.pop(Lease.id_for(name), None)

    # -- holding --------------------------------------------------------------------------------

    async def take(self, name: str, on_lost: Callable[[], None] | None = None) -> bool:
        """True once this process holds `name` (taken now, or held already); False while another holds it."""
        async with self._lock(name):
            if self._given_up:
                return False
            if self.holds(name):
                return True
            now = self._clock()
            try:
                lease = await self._events.get(Lease.id_for(name))
                if not lease.is_free_for(self.holder, now):
                    self._seen[name] = (lease.holder, lease.until)
                    return False
                lease.take(self.holder, now, now + self.lease_s)
            except AggregateNotFoundError:
                lease = Lease(name=name, holder=self.holder, until=now + self.lease_s)
            except EventStoreUnavailable as error:  # not taken; tried again at the next sweep or step
                log.warning("lease not read", lease=name, error=str(error) or type(error).__name__)
                return False
            try:
                await self._events.save(lease)
            except IntegrityError:
                return False  # another process took it at the same moment
            except Exception as error:  # the store away: tried again at the next sweep
                log.warning("lease not taken", lease=name, error=str(error) or type(error).__name__)
                return False
            if self._given_up:  # the identity lost while this save was on its way: the lease is the other's
                return False
            self._held[name], self._until[name] = lease, now + self.lease_s
            if on_lost is not None:
                self._on_lost[name] = on_lost
            self._watch(name)
            log.info("lease taken", lease=name, holder=self.holder)
            return True

    def holds(self, name: str) -> bool:
        """Held here, and not so near its end that another may take it before a renewal lands."""
        return name in self._until and self._clock() < self._until[name] - self.renew_s

    def drop(self, name: str) -> None:
        """Stop renewing `name` (what it covered ended here): another may take it once it expires."""
        self._held.pop(name, None)
        self._until.pop(name, None)
        self._on_lost.pop(name, None)
        self._unwatch(name)

    def _watch(self, name: str) -> None:
        """Stop the driver of `name` by this process's clock once the lease is within a renewal period of its end,
        not at its next save only: a driver stalled (SIGSTOP, a renewal hung on a store that does not answer)
        must not make one more Docker or Redis effect of its step once another process may have taken it over.
        A timer of the event loop: woken from a stall, the loop runs it before the step's task goes on."""
        self._unwatch(name)
        if name in self._until:
            delay = max(0.0, self._until[name] - self.renew_s - self._clock())
            self._watchdogs[name] = asyncio.get_running_loop().call_later(delay, self._overdue, name)

    def _unwatch(self, name: str) -> None:
        if (watchdog := self._watchdogs.pop(name, None)) is not None:
            watchdog.cancel()

    def _overdue(self, name: str) -> None:
        self._watchdogs.pop(name, None)
        if self.holds(name):
            self._watch(name)  # renewed meanwhile
        else:
            self._lose(name, "not renewed in time; stopped before another process may take it over")

    async def renew(self, name: str) -> bool:
        async with self._lock(name):
            if name not in self._until:
                return False
            try:
                await self._save_renewed(name)
                return True
            except LeaseLost as lost:
                self._lose(name, str(lost))
            except Exception as error:
                if not self.holds(name):
                    self._lose(name, f"not renewed in time ({str(error) or type(error).__name__})")
                else:
                    log.warning("lease not renewed; tried again", lease=name, error=str(error) or type(error).__name__)
            return False

    async def save_holding(self, name: str, *aggregates) -> list:
        """Save `aggregates` with a renewal of `name`, atomically: refused (LeaseLost) once `name` is not ours."""
        async with self._lock(name):
            if not self.holds(name):
                self._lose(name, "expired before this save")
                raise LeaseLost(f"lease {name} is no longer held by {self.holder}")
            try:
                return await self._save_renewed(name, *aggregates)
            except LeaseLost as lost:
                self._lose(name, str(lost))
                raise

    async def _save_renewed(self, name: str, *aggregates) -> list:
        lease = self._held.get(name) or await self._events.get(Lease.id_for(name))
        self._held[name] = None  # until this save is known to have landed
        now = self._clock()
        lease.renew(self.holder, now + self.lease_s)  # LeaseLost when another holds it now
        try:
            recordings = await self._events.save(lease, *aggregates)
        except IntegrityError:
            current = await self._events.get(Lease.id_for(name))
            if current.holder != self.holder:
                raise LeaseLost(f"lease {name} was taken by {current.holder}") from None
            raise  # another aggregate of the save was stale: the caller decides again
        if name in self._until:  # else dropped meanwhile (its driver ended, or lost it): not to be renewed again
            self._held[name], self._until[name] = lease, now + self.lease_s
            self._watch(name)
        return recordings

    def give_up(self, why: str) -> None:
        """This process's identity is another live process's now (engine/identity_watch.py): the leases held by
        that identity are that process's, so none is renewed or taken here any more and their drivers stop.
        Nothing is recorded: in the log they are still the identity's, and the other renews them."""
        self._given_up = True
        for name in list(self._until):
            self._lose(name, why)

    def _lose(self, name: str, why: str) -> None:
        on_lost = self._on_lost.get(name)
        if name in self._until:
            log.warning("lease lost; what it covered is left to the process that takes it", lease=name, why=why)
        self.drop(name)
        if on_lost is not None:
            on_lost()

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # -- renewing ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._renew_all(), name="lease-renewals")

    async def _renew_all(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            for name in list(self._until):
                await self.renew(name)
            for name in [n for n, lock in self._locks.items() if n not in self._until and not lock.locked()]:
                self._locks.pop(name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def fenced(self, events: EventLog) -> LeasedLog:
        return LeasedLog(events, self)


class LeasedLog:
    """The event log as the saga coordinator sees it: a save of an Operation carries a renewal of the
    operation's lease, and is refused (LeaseLost) once this process no longer holds it."""

    def __init__(self, events: EventLog, leases: EventLeases):
        self._events, self._leases = events, leases

    def __getattr__(self, name):
        return getattr(self._events, name)

    async def save(self, *aggregates) -> list:
        operation = next((a for a in aggregates if isinstance(a, Operation)), None)
        if operation is None:
            return await self._events.save(*aggregates)
        return await self._leases.save_holding(operation_lease(operation.id), *aggregates)
