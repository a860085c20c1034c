"""Whether this engine process still holds its identity (REDIS_ADDONS_PROCESS_ID), checked every renewal period.

Leases are held by identity (engine/leases.py): two live processes of one identity would both take an
operation's lease as theirs and drive it twice. On PostgreSQL the identity is a session advisory lock
(adapters/postgres/process_lock.py); when its connection breaks (the server restarted, the session ended, the
network cut) the server frees it, and the lock is taken again at once on a new connection: still ours if nobody
took it meanwhile. Only when another process holds the identity now is it lost: this engine then stops driving
anything (its leases given up, its coordinator and duties stopped) and says so; `redis-addons serve` exits
non-zero (adapters/http/serve.py). A store that does not answer is no loss: the leases end by themselves
meanwhile, before another may take them. A file lock (SQLite, one process alone) is lost only with its process:
nothing is watched there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("engine")


class ProcessIdentityLost(Exception):
    """Another engine process holds this one's identity now: this one drives nothing more."""


class IdentityWatch:
    def __init__(self, lock, leases, stop_driving: list[Callable[[], Awaitable]]):
        """`lock`: engine.ports.DataLock (None: nothing to watch); `leases`: engine/leases.py (its holder is the
        identity, its renewal period the check's); `stop_driving`: what drives operations, stopped when lost."""
        self.lock, self.leases, self.stop_driving = lock, leases, stop_driving
        self.lost = asyncio.Event()
        self.error: ProcessIdentityLost | None = None  # set when lost: what to tell
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.lock is not None and self.leases.shared and self._task is None:
            self._task = asyncio.create_task(self._keep_checking(), name="process-identity")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self.leases.renew_s)
            if await self.check():
                return

    async def check(self) -> bool:
        """One period's check: True once the identity is found lost (and this engine stopped driving)."""
        try:
            held = await asyncio.to_thread(self.lock.still_held)  # the lock's adapter may wait on its store
        except Exception:
            log.exception("checking the process identity's lock failed; checked again next period")
            return False
        if not held:
            await self._lose()
        return not held

    async def _lose(self) -> None:
        identity = self.leases.holder
        self.error = ProcessIdentityLost(
            f"process identity {identity!r} was lost: another redis-addons engine holds it now (this one's lock "
            "on it was freed, its connection broken, and taken meanwhile); this engine stopped driving operations. "
            "One engine per identity (REDIS_ADDONS_PROCESS_ID): stop the other one first, or give each its own")
        log.error("process identity lost; this engine stops driving operations", identity=identity)
        self.leases.give_up(f"process identity {identity!r} is another process's now")
        for stop in self.stop_driving:
            await stop()
        self.lost.set()
