"""One actor at a time on an addon's nodes: a command recording the start of an operation, or the
node watcher bringing a node back. Without it, the watcher could restart a node between a plan
change's start and its `stop`, or make a container again for an addon being removed."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager


class AddonClaims:
    def __init__(self):
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def claim(self, addon: str):
        lock = self._locks.setdefault(addon, asyncio.Lock())
        async with lock:
            yield
