"""An addon's stats as the API, the CLI and the dashboard show them: the latest sample of each node
(reference, "Container Stats": CPU, memory current / highest / free, swap; "Database Stats": the
size on disk and the server's figures) and their history over the last hour or day."""

from __future__ import annotations

import asyncio

from domain.errors import DomainError
from engine.stats import NodeStats
from engine.stats_sampler import StatsSampler

# period -> (how far back, one point per step_s; 0: every sample)
PERIODS = {"hour": (3_600, 0), "day": (86_400, 60), "week": (7 * 86_400, 300)}
NO_SWAP = "no swap allowed"  # the swap limit equals the memory limit: the node never swaps


class InvalidStatsQuery(DomainError):
    rule = "invalid-stats-query"
    status = 400


def node_figures(sample: NodeStats) -> dict:
    container = sample.container
    memory = swap = None
    if container is not None:
        memory = {"used": container.memory_used_bytes, "highest": sample.memory_highest_bytes,
                  "limit": container.memory_limit_bytes,
                  "free": max(0, container.memory_limit_bytes - container.memory_used_bytes)}
        swap = {"allowed": container.swap_allowed, "used": container.swap_used_bytes,
                "highest": sample.swap_highest_bytes, "free": None}
        if not container.swap_allowed:
            swap["note"] = NO_SWAP
    database = None
    if sample.database is not None:
        database = {**sample.database.__dict__, "keys": {f"db{n}": k for n, k in sample.database.keys.items()}}
    return {"node": sample.node, "role": sample.role, "host": sample.host, "up": sample.up, "at": sample.at,
            "cpu_percent": container.cpu_percent if container else None, "memory": memory, "swap": swap,
            "disk_bytes": sample.disk_bytes, "database": database}


class StatsQueries:
    """Engine methods (a mixin of engine.app.Engine: it has lookup, views, stats_sampler)."""

    def new_stats_sampler(self, history) -> StatsSampler:
        return StatsSampler(self.views, self.runtime, self.redis, self.secrets, history, self.settings.stats_interval_s)

    async def addon_stats(self, app: str, addon: str) -> dict:
        """The latest sample of each of the addon's nodes (`addon`: an ID or `redis`); taken now when the
        sampler has none of it yet."""
        name = await self.lookup.named(app, addon)
        samples = self.stats_sampler.latest_of(name) or await self.stats_sampler.sample_addon(name)
        return {"addon": name, "sampled_at": max((s.at for s in samples), default=None),
                "interval_s": self.stats_sampler.interval_s,
                "nodes": [node_figures(s) for s in sorted(samples, key=lambda s: (s.role != "data", s.node))]}

    async def addon_stats_history(self, app: str, addon: str, node: str | None = None, period: str = "hour") -> dict:
        """{node: [points]} over the period (hour: every sample; day: one a minute; week: one per 5 minutes)."""
        if period not in PERIODS:
            raise InvalidStatsQuery(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
        name = await self.lookup.named(app, addon)
        if node is not None:
            known = {row["id"] for row in await asyncio.to_thread(self.views.nodes, name)}
            if node not in known:
                raise InvalidStatsQuery(f"addon {name} has no node {node!r} (see its nodes)")
        back, step_s = PERIODS[period]
        history = self.stats_sampler.history
        points = history.history(name, self.stats_sampler.clock() - back, node, step_s) if history else {}
        return {"addon": name, "period": period, "step_s": step_s or self.stats_sampler.interval_s, "nodes": points}
