"""The stats sampler: every interval, one NodeStats of each live node of each live addon — container
figures for every node, and for data nodes the server's INFO and the size of its data files — kept as
the latest sample of each node and recorded in the history (a port). A node that does not answer is
sampled as down; nothing a node does stops the round."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import time

import structlog

from domain.cluster import LIVE
from engine.nodes import endpoint
from engine.monitoring_ports import StatsHistory
from engine.ports import ContainerReading, ReadModels, RedisAdmin, Runtime, SecretStore
from engine.stats import ContainerFigures, DatabaseFigures, NodeStats
from engine.stats_readings import HighestSinceRestart, cpu_percent

log = structlog.get_logger("stats")

# Where a data node's server keeps its files: redis.conf's `dir /data` (domain/redis_config.py) and
# Redis's default file names, which the engine does not change.
DATA_DIR, RDB_FILE, AOF_DIR, AOF_FILE = "/data", "dump.rdb", "appendonlydir", "appendonly.aof"
CONCURRENCY = 8  # servers and data directories read at once: a round over many addons does not flood a host
# Docker's stats API answers a one-shot read at its collector's next tick (once a second) with every
# container asked for meanwhile: the container reads wait together, or a round would take a second per 8 nodes.
WAITING_TOGETHER = 64
READ_TIMEOUT_S = 5.0  # a node (or host) slower than this is sampled as down this round


class StatsSampler:
    def __init__(self, views: ReadModels, runtime: Runtime, redis: RedisAdmin, secrets: SecretStore,
                 history: StatsHistory | None, interval_s: float, clock=time.time):
        self.views, self.runtime, self.redis, self.secrets = views, runtime, redis, secrets
        self.history, self.interval_s, self.clock = history, interval_s, clock
        self._previous: dict[tuple[str, str], ContainerReading] = {}  # per (host, container), for CPU %
        self._highest = HighestSinceRestart()
        self._latest: dict[tuple[str, str], NodeStats] = {}  # per (addon, node)
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._waiting = asyncio.Semaphore(WAITING_TOGETHER)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="stats-sampler", context=contextvars.Context())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.redis.close()  # the connections its INFO reads keep between rounds

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except Exception as error:  # the read models unreadable for a moment: next round
                log.warning("sampling stats failed this round", error=str(error) or type(error).__name__)
            await asyncio.sleep(self.interval_s)

    def latest(self) -> list[NodeStats]:
        """The last sample of each node that still exists (no I/O)."""
        return list(self._latest.values())

    def latest_of(self, addon: str) -> list[NodeStats]:
        return [s for s in self._latest.values() if s.addon == addon]

    async def sample_once(self) -> list[NodeStats]:
        """One round over every live node of every live addon."""
        targets = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] != "removed":
                targets += await self._targets(row)
        samples = await self._sample(targets)
        self._latest = {(s.addon, s.node): s for s in samples}
        self._highest.keep_only({(s.addon, s.node) for s in samples})
        self._previous = {k: v for k, v in self._previous.items() if k in {(n["host"], n["container"]) for _, n in targets}}
        if self.history is not None:
            self.history.record(samples)
            for gone in self.history.addons() - {s.addon for s in samples}:
                self.history.forget(gone)
        return samples

    async def sample_addon(self, addon: str) -> list[NodeStats]:
        """One addon's nodes now (asked before the sampler's first round reached it)."""
        row = await asyncio.to_thread(self.views.addon, addon)
        samples = await self._sample(await self._targets(row)) if row else []
        self._latest.update({(s.addon, s.node): s for s in samples})
        if self.history is not None:
            self.history.record(samples)
        return samples

    async def _targets(self, row: dict) -> list[tuple[dict, dict]]:
        nodes = await asyncio.to_thread(self.views.nodes, row["name"])
        return [(row, node) for node in nodes if node["state"] in LIVE]

    async def _sample(self, targets: list[tuple[dict, dict]]) -> list[NodeStats]:
        samples = await asyncio.gather(*(self._node(row, node) for row, node in targets))
        return with_lag(list(samples))

    async def _node(self, row: dict, node: dict) -> NodeStats:
        host, container = node["host"], node["container"]
        async with self._waiting:
            reading = await self._quietly(self.runtime.container_reading(host, container), node)
        database, disk = None, None
        if reading is not None and reading.running and node["role"] == "data":
            async with self._slots:
                password = self.secrets.peek(row["name"])
                database, disk = await asyncio.gather(
                    self._quietly(self.redis.database_figures(endpoint(node, password)), node) if password else _none(),
                    self._quietly(self.runtime.stored_bytes(host, container, DATA_DIR, RDB_FILE, AOF_DIR, AOF_FILE), node))
        return self._sample_of(row, node, reading, database, disk)

    async def _quietly(self, reading, node: dict):
        try:
            return await asyncio.wait_for(reading, READ_TIMEOUT_S)
        except Exception as error:  # a node down, restarting, or its host silent: sampled as down
            log.debug("stats read failed", node=node["id"], error=str(error) or type(error).__name__)
            return None

    def _sample_of(self, row: dict, node: dict, reading: ContainerReading | None, database: DatabaseFigures | None,
                   disk: int | None) -> NodeStats:
        key, place = (row["name"], node["id"]), (node["host"], node["container"])
        figures, highest = None, (None, None)
        if reading is not None:
            figures = ContainerFigures(cpu_percent(self._previous.get(place), reading), reading.memory_used_bytes,
                                       reading.memory_limit_bytes, reading.swap_allowed, reading.swap_used_bytes)
            self._previous[place] = reading
            if reading.running:
                highest = self._highest.track(key, reading.started_at, database.run_id if database else "",
                                              reading.memory_used_bytes, reading.swap_used_bytes)
        up = reading is not None and reading.running and (node["role"] != "data" or database is not None)
        return NodeStats(app=row["app"], addon=row["name"], node=node["id"], role=node["role"], host=node["host"],
                         at=self.clock(), up=up, container=figures, database=database, disk_bytes=disk,
                         memory_highest_bytes=highest[0], swap_highest_bytes=highest[1])


async def _none():
    return None


def with_lag(samples: list[NodeStats]) -> list[NodeStats]:
    """Each replica's lag: its addon's primary's offset less its own (read in the same round)."""
    primaries = {s.addon: s.database.repl_offset for s in samples if s.database and s.database.role == "master"}
    result = []
    for sample in samples:
        database = sample.database
        if database and database.role == "slave" and sample.addon in primaries:
            lag = max(0, primaries[sample.addon] - database.repl_offset)
            sample = dataclasses.replace(sample, database=dataclasses.replace(database, lag_bytes=lag))
        result.append(sample)
    return result
