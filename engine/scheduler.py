"""The scheduler (DESIGN §4): every tick, the scheduled backups whose day has come, then a
retention sweep, then (every few hours) the TLS certificates due for renewal, and nodes made
before TLS was served here start serving it; last, the maintenance of each addon running an outdated
build whose weekly window is open. Not strictly on time, as the reference says; a tick after downtime
catches up the backups, while a maintenance window missed waits for the next week."""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from engine import audit
log = structlog.get_logger("scheduler")


class Scheduler:
    def __init__(self, backups, renewals, serve_tls, tick_s: float, maintenance=None):
        self.backups, self.renewals, self.serve_tls, self.tick_s = backups, renewals, serve_tls, tick_s
        self.maintenance = maintenance  # engine.maintenance.Maintenance.run_due
        self._task: asyncio.Task | None = None
        self.ticks = 0  # rounds run, and the parts of them that failed by part (read by /metrics)
        self.failures: Counter[str] = Counter()

    def start(self) -> None:
        if self.tick_s > 0:
            self._task = asyncio.create_task(self._run(), name="scheduler", context=audit.context_for(audit.ENGINE))

    async def _run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.tick_s)

    async def tick(self, now=None) -> dict:
        """One round at `now` (the clock's by default); a failure is logged and tried again next tick."""
        now = now or self.backups.clock()
        result = {"started": [], "swept": None, "renewing": [], "serving_tls": [], "maintenance": []}
        self.ticks += 1
        try:
            result["started"] = await self.backups.run_due_backups(now)
        except Exception as error:
            self.failures["backups"] += 1
            log.error("scheduled backups failed this tick", error=str(error) or type(error).__name__)
        try:
            result["swept"] = await self.backups.sweep(now)
        except Exception as error:
            self.failures["retention"] += 1
            log.error("retention sweep failed this tick", error=str(error) or type(error).__name__)
        try:
            result["renewing"] = await self.renewals.renew_due(now)
        except Exception as error:
            self.failures["certificates"] += 1
            log.error("certificate check failed this tick", error=str(error) or type(error).__name__)
        try:
            result["serving_tls"] = await self.serve_tls()
        except Exception as error:
            self.failures["serve_tls"] += 1
            log.error("looking for nodes without TLS failed this tick", error=str(error) or type(error).__name__)
        try:
            result["maintenance"] = await self.maintenance(now) if self.maintenance else []
        except Exception as error:
            self.failures["maintenance"] += 1
            log.error("maintenance windows failed this tick", error=str(error) or type(error).__name__)
        return result

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
