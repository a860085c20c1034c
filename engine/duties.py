"""The installation's once-per-installation duties: the scheduler (scheduled backups, retention, certificate
renewals, TLS where missing, maintenance windows), the node watcher with its healer, host drains (engine/hosts_drain.py)
and webhook sending.

Two processes doing them would both heal the same node and send each webhook twice, so on a shared event
store one process leads: it holds the "duties" lease (engine/leases.py) and runs them; the others try to
take the lease every renewal period and start them once they get it (the leader died, or could not renew
and stopped them). A process alone on its store holds the lease at once and records nothing.

Not duties: following the log, serving the API, driving operations (each under its own lease), taking over
orphaned ones (engine/takeover.py), sampling the nodes' stats (each process keeps the history its API shows).
"""

from __future__ import annotations

import asyncio
import inspect

import structlog

from domain.lease import DUTIES

log = structlog.get_logger("duties")


class Duties:
    def __init__(self, leases, parts: list, takeover):
        self.leases, self.parts, self.takeover = leases, parts, takeover  # parts: objects with start() and stop()
        self.leading = False
        self._task: asyncio.Task | None = None
        self._stopping: asyncio.Task | None = None
        self._changing = asyncio.Lock()

    async def start(self) -> None:
        self.leases.start()
        self.takeover.start()
        await self._lead_if_free()
        if self.leases.shared:
            self._task = asyncio.create_task(self._claim(), name="duties-claim")

    async def _claim(self) -> None:
        while True:
            await asyncio.sleep(self.leases.renew_s)
            try:
                await self._lead_if_free()
            except Exception:
                log.exception("taking the duties failed; tried again")

    async def _lead_if_free(self) -> None:
        if not self.leading and await self.leases.take(DUTIES, on_lost=self._lost):
            async with self._changing:
                for part in self.parts:
                    if inspect.isawaitable(started := part.start()):
                        await started
                self.leading = True
            if self.leases.shared:
                log.info("this process runs the installation's duties", holder=self.leases.holder)

    def _lost(self) -> None:
        self._stopping = asyncio.get_running_loop().create_task(self._stop_parts(), name="duties-stop")

    async def _stop_parts(self) -> None:
        async with self._changing:
            if self.leading:
                self.leading = False
                for part in reversed(self.parts):
                    await part.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._stop_parts()
        self.leases.drop(DUTIES)
        await self.takeover.stop()
        await self.leases.stop()
