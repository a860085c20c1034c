"""Failovers as facts: the Sentinels of each Business cluster are asked which data node is the
primary, and when a majority names another node than the one recorded, `PrimaryChanged` is recorded
on the Cluster with the time it was seen. Asked every watcher round (2 s): a failover while the
engine was down is recorded when it comes back. The routing itself never waits for this: HAProxy
follows the Sentinels on its own."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import structlog

from domain.catalog import PlanCatalog
from domain.cluster_config import MASTER_NAME, QUORUM
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of
from engine.ports import EffectError, Endpoint, ReadModels, RedisAdmin, SecretStore, TransientError
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("failovers")


class FailoverFollower:
    def __init__(self, events: EventLog, views: ReadModels, redis: RedisAdmin, secrets: SecretStore, plans: PlanCatalog):
        self.events, self.views, self.redis, self.secrets, self.plans = events, views, redis, secrets, plans

    async def look(self) -> list[dict]:
        """One round over every running Business cluster; returns the primary changes recorded."""
        changes = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] != "running" or not self.plans.get(row["plan"]).is_cluster:
                continue
            try:
                if change := await self._follow(row["name"]):
                    changes.append(change)
            except IntegrityError:  # recorded meanwhile by another writer: looked at again next round
                continue
        return changes

    async def _follow(self, addon: str) -> dict | None:
        cluster = await cluster_of(self.events, addon)
        named = await self._named_by_a_majority(addon, [n for n in cluster.live_nodes if n["role"] == "sentinel"])
        new = next((n for n in cluster.live_nodes if n["role"] == "data" and f"{n['address']}:{n['port']}" == named), None)
        if new is None or new["id"] == cluster.primary:
            return None
        old = cluster.primary
        cluster.change_primary(new=new["id"], reason="failover by the Sentinels",
                               observed_at=datetime.now(timezone.utc).isoformat())
        await self.events.save(cluster)
        log.warning("primary changed", addon=addon, old=old, new=new["id"])
        return {"addon": addon, "old": old, "new": new["id"]}

    async def _named_by_a_majority(self, addon: str, sentinels: list[dict]) -> str | None:
        password = self.secrets.password_for(sentinel_secret(addon))
        answers = Counter()
        for node in sentinels:
            try:
                view = await self.redis.sentinel_view(Endpoint(node["address"], node["port"], password), MASTER_NAME)
            except (TransientError, EffectError):
                continue  # a Sentinel down: the others may still be a majority
            answers[view["primary"]] += 1
        named, votes = answers.most_common(1)[0] if answers else (None, 0)
        return named if votes >= QUORUM else None
