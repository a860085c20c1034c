"""Draining hosts, round after round, until each holds nothing (domain/host_drain.py decides the moves).

Each round looks at every draining host: which nodes it still holds, which of their addons an operation
holds (waited for: one operation per addon), which moves of this drain still run; it starts the next
moves, at most DRAIN_CONCURRENCY at once; a host that holds nothing and has no move running is recorded
drained. A move refused or failed is tried again at a later round; the moves are the sagas', with their
own no-loss guarantees and undo. An engine restarted mid-drain goes on: the host is recorded draining, and
the operations it started resume like any other.
"""

from __future__ import annotations

import asyncio
import contextvars
from uuid import UUID

import structlog

from domain.errors import DomainError
from domain.host_drain import DRAIN_CONCURRENCY, HeldNode, plan_drain
from engine.hosts import HostBook
from engine.hosts_moves import Mover
from engine.inventory import Inventory
from engine.ports import EffectError, TransientError

log = structlog.get_logger("hosts")

ROUND_S = 2.0


class Drainer:
    def __init__(self, book: HostBook, mover: Mover, inventory: Inventory, plans, round_s: float = ROUND_S,
                 limit: int = DRAIN_CONCURRENCY):
        self.book, self.mover, self.inventory, self.plans = book, mover, inventory, plans
        self.round_s, self.limit = round_s, limit
        self.moving: dict[str, str] = {}  # operation id -> addon, of the moves this drain started
        self.waiting: dict[str, dict[str, str]] = {}  # host -> addon -> why it waits (shown by the listing)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        book.on_drain = self._wake.set

    def start(self) -> None:
        if self.round_s > 0:
            self._task = asyncio.create_task(self._run(), name="host-drain", context=contextvars.Context())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # the read models behind, the store busy: the next round sees again
                log.exception("drain round failed; tried again")
            try:
                await asyncio.wait_for(self._wake.wait(), self.round_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def round(self) -> list[dict]:
        """One look at every draining host; returns the moves started."""
        await self.book.refresh()  # a drain asked through another engine process is this one's to run too
        busy = {addon: str(op) for op, addon in self.inventory.unfinished.items()}
        self.moving = {op: addon for op, addon in self.moving.items() if UUID(op) in self.inventory.unfinished}
        started = []
        for host in self.book.draining:
            held = [HeldNode(n["addon"], self.plans.get(n["plan"]).is_cluster, n["role"], n["id"], n["container"])
                    for n in await self.book.nodes_on(host)]
            if not held and not self.moving:  # drained once every move it started has ended too
                await self.book.finish_drain(host, 0)
                self.waiting.pop(host, None)
                continue
            plan = plan_drain(held, busy, set(self.moving.values()), self.limit)
            self.waiting[host] = dict(plan.waiting)
            for move in plan.start:
                try:
                    outcome = await self.mover.start(move, host)
                except (DomainError, EffectError, TransientError) as error:  # busy meanwhile, no room...: next round
                    self.waiting[host][move.addon] = f"not moved yet: {error}"
                    log.warning("drain: move not started", host=host, addon=move.addon, how=move.how, error=str(error))
                    continue
                if outcome is None:  # moved already: the read models had not shown it yet
                    continue
                self.moving[outcome["operation_id"]] = move.addon
                busy[move.addon] = outcome["operation_id"]
                started.append({"host": host, "addon": move.addon, "how": move.how, **outcome})
                log.info("drain: move started", host=host, addon=move.addon, how=move.how, **outcome)
        return started
