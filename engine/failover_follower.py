"""Failovers as facts: each watcher round (2 s) the engine subscribes to the Sentinels of each
Business cluster (engine/sentinel_events.py records what they publish as they publish it), then
asks them which data node is the primary: when a majority names another node than the one recorded,
`PrimaryChanged` is recorded on the Cluster with the time it was seen. The asking is the fallback for
a failover no message told of: one while the engine was down is recorded when it comes back. The
routing itself never waits for this: HAProxy follows the Sentinels on its own."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import structlog

from domain.catalog import PlanCatalog
from domain.cluster_config import MASTER_NAME, QUORUM, WRITES_STOPPED
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import EffectError, Endpoint, ReadModels, RedisAdmin, SecretStore, TransientError
from engine.sentinel_events import FAILOVER, SAVE_ATTEMPTS, SentinelEvents
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("failovers")


class FailoverFollower:
    def __init__(self, events: EventLog, views: ReadModels, redis: RedisAdmin, secrets: SecretStore, plans: PlanCatalog,
                 notices: SentinelEvents | None = None):
        self.events, self.views, self.redis, self.secrets, self.plans = events, views, redis, secrets, plans
        self.notices = notices or SentinelEvents(events, secrets, redis.sentinel_notices)  # what they publish
        self.notices.on_failover = self.bound_writes_now

    async def look(self) -> list[dict]:
        """One round over every running Business cluster: subscribed to its Sentinels as they are now,
        then asked; returns the primary changes recorded since the last round, heard or asked."""
        addons = [row["name"] for row in await asyncio.to_thread(self.views.addons)
                  if row["status"] in ("running", "degraded", "down") and self.plans.get(row["plan"]).is_cluster]
        await self.notices.look(addons)
        for addon in addons:
            async with self.notices.lock(addon):  # a message about it waits: one decides at a time
                for _ in range(SAVE_ATTEMPTS):
                    try:
                        if change := await self._follow(addon):
                            await self.notices.note(change)
                        break
                    except IntegrityError:  # saved meanwhile by another writer: decided again on what it recorded
                        continue
        return self.notices.primary_changes()

    async def stop(self) -> None:
        await self.notices.stop()

    async def _follow(self, addon: str) -> dict | None:
        cluster = await cluster_of(self.events, addon)
        named = await self._named_by_a_majority(addon, [n for n in cluster.live_nodes if n["role"] == "sentinel"])
        new = next((n for n in cluster.live_nodes if n["role"] == "data" and f"{n['address']}:{n['port']}" == named), None)
        change, now = None, datetime.now(timezone.utc).isoformat()
        if new is not None and new["id"] != cluster.primary:
            change = dict(addon=addon, fact="PrimaryChanged", old=cluster.primary, new=new["id"], at=now, seen_by=None)
            cluster.change_primary(new=new["id"], reason=FAILOVER, observed_at=now)
            log.warning("primary changed", addon=addon, old=change["old"], new=new["id"])
        await self._keep_writes_bounded(addon, cluster, now)
        if cluster.pending_events:
            await self.events.save(cluster)
        return change

    async def bound_writes_now(self, addon: str) -> None:
        """On a +switch-master: the promoted node inherited `min-replicas-to-write 1` and has no replica
        yet, so it would refuse writes until the next round; the requirement follows at once."""
        async with self.notices.lock(addon):
            for _ in range(SAVE_ATTEMPTS):
                cluster = await cluster_of(self.events, addon)
                await self._keep_writes_bounded(addon, cluster, datetime.now(timezone.utc).isoformat())
                try:
                    if cluster.pending_events:
                        await self.events.save(cluster)
                    return
                except IntegrityError:
                    continue

    async def _keep_writes_bounded(self, addon: str, cluster, now: str) -> None:
        """A primary acknowledges a write only once a replica is in sync (min-replicas-to-write 1), so a
        failover loses none; with no replica in sync (it died, or is being replaced) the primary would
        refuse every write, so the requirement is lowered and the cluster recorded degraded, until a
        replica is in sync again (Patroni's non-strict synchronous mode)."""
        primary = cluster.primary_node
        if primary is None:
            return
        node = endpoint(primary, self.secrets.password_for(addon))
        try:
            info = await self.redis.replication(node)
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
            wanted = "1" if online else "0"
            await self._promotable_once_in_sync(node, online)
            now_asked = (await self.redis.configuration(node, ["min-replicas-to-write"]))["min-replicas-to-write"]
            if now_asked not in (wanted, str(WRITES_STOPPED)):  # an operation stopped its writes: its to give back
                await self.redis.configure(node, {"min-replicas-to-write": wanted})
        except (TransientError, EffectError):
            return  # the primary does not answer: the Sentinels fail it over; looked at again next round
        if wanted == "0":
            cluster.mark_degraded("no replica in sync: writes are acknowledged without one", now)
        else:
            cluster.mark_redundant(now)

    async def _promotable_once_in_sync(self, primary: Endpoint, online: list[dict]) -> None:
        """A replica that joined or came back is not promotable (replica-priority 0) until the primary
        sees it in sync: from then on the Sentinels may elect it."""
        for link in online:
            replica = Endpoint(link["ip"], int(link["port"]), primary.password, tls=primary.tls)  # as the primary: TLS in a TLS cluster
            if (await self.redis.configuration(replica, ["replica-priority"]))["replica-priority"] == "0":
                await self.redis.configure(replica, {"replica-priority": "100"})
                log.info("replica in sync: promotable again", replica=f"{link['ip']}:{link['port']}")

    async def _named_by_a_majority(self, addon: str, sentinels: list[dict]) -> str | None:
        password = self.secrets.password_for(sentinel_secret(addon))
        answers = Counter()
        for node in sentinels:
            try:
                view = await self.redis.sentinel_view(endpoint(node, password), MASTER_NAME)
            except (TransientError, EffectError):
                continue  # a Sentinel down: the others may still be a majority
            answers[view["primary"]] += 1
        named, votes = answers.most_common(1)[0] if answers else (None, 0)
        return named if votes >= QUORUM else None
