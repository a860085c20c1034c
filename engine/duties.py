"""The installation's once-per-installation duties: the scheduler (scheduled backups, retention, certificate
renewals, TLS where missing, maintenance windows), the node watcher with its healer, host drains (engine/hosts_drain.py)
and webhook sending.

Two processes doing them would both heal the same node and send each webhook twice, so on a shared store one
process leads: the one holding the duties lock (DutiesLock: on PostgreSQL a session advisory lock held on a
connection of its own, adapters/postgres/duties_lock.py). Unlike an operation's lease, the lock records nothing
in the event log: a lease renewed every few seconds for as long as the installation lives would grow the log,
its exports and every replay without end. Every renewal period the leader checks it still holds the lock (its
connection alive) and stops its duties at once when it does not; the others try to take it. A process alone on
its store holds it at once (SoleDutiesLock).

Not duties: following the log, serving the API, driving operations (each under its own lease), taking over
orphaned ones (engine/takeover.py), sampling the nodes' stats (each process keeps the history its API shows).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Protocol

import structlog

log = structlog.get_logger("duties")


class DutiesLock(Protocol):
    """One holder at a time across the installation's processes; lost with its holder's process or connection."""

    async def try_hold(self) -> bool:
        """True once this process holds the lock (taken now, or held already); False while another holds it or
        the store does not answer."""

    async def still_held(self) -> bool:
        """Whether the lock taken is still this process's (False once its connection broke: the server freed it)."""

    async def release(self) -> None:
        """Give the lock up (idempotent): another process may take it at once."""


class SoleDutiesLock:
    """The only process on its store: the duties are its own, always."""

    async def try_hold(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        pass


class Duties:
    def __init__(self, leases, parts: list, takeover, lock: DutiesLock | None = None):
        """`leases`: engine/leases.py (started and stopped here, its renewal period is the lock's check period);
        `parts`: objects with start() and stop()."""
        self.leases, self.parts, self.takeover = leases, parts, takeover
        self.lock = lock or SoleDutiesLock()
        self.leading = False
        self._task: asyncio.Task | None = None
        self._changing = asyncio.Lock()

    async def start(self) -> None:
        self.leases.start()
        self.takeover.start()
        await self.check()
        if self.leases.shared:
            self._task = asyncio.create_task(self._keep_checking(), name="duties-lock")

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self.leases.renew_s)
            try:
                await self.check()
            except Exception:
                log.exception("checking the duties lock failed; tried again")

    async def check(self) -> None:
        """One period: a leader that lost the lock stops its duties; a process without them tries to take them."""
        async with self._changing:
            if self.leading and not await self.lock.still_held():
                log.warning("duties lock lost (its connection broke); this process stops the installation's duties")
                await self._stop_parts()
                await self.lock.release()
            if not self.leading and await self.lock.try_hold():
                await self._start_parts()
                self.leading = True
                if self.leases.shared:
                    log.info("this process runs the installation's duties", holder=getattr(self.leases, "holder", None))

    async def _start_parts(self) -> None:
        """All of them or none: a part that cannot start (the store not answering, say) stops the ones started
        before it and gives the lock up, so the next check starts each once, or another process does."""
        started = []
        try:
            for part in self.parts:
                if inspect.isawaitable(starting := part.start()):
                    await starting
                started.append(part)
        except BaseException:
            for part in reversed(started):
                try:
                    await part.stop()
                except Exception:
                    log.exception("a duty did not stop", duty=type(part).__name__)
            await self.lock.release()
            raise

    async def _stop_parts(self) -> None:
        if self.leading:
            self.leading = False
            for part in reversed(self.parts):
                await part.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._changing:
            await self._stop_parts()
            await self.lock.release()
        await self.takeover.stop()
        await self.leases.stop()
