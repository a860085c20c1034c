"""What the Sentinels say of a Business cluster, recorded on its Cluster as they say it.

Each Sentinel publishes what it sees on channels of its own: `+sdown` when it cannot reach a node
(subjectively down: it alone), `+odown` when a quorum of them agrees the primary is down
(objectively: a failover follows), `-sdown` / `-odown` when that ends, and `+switch-master` once a
new primary was elected. The engine subscribes to every Sentinel of every running cluster and
records each fact the moment it arrives, with that time, instead of at its next poll: so the history
of an addon's nodes and primaries is in the event log, its stream and the read models.

The three Sentinels each say the same things: the first to say a node is down is recorded, with who
said it, once per episode; the first to reach it again ends the episode. The polling of
engine/failover_follower.py stays for a failover no message told us of (the engine was down, a
subscription was lost): both record under one lock per addon and a stale save is decided again on
what is recorded, so a failover is recorded once, by whichever sees it first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from domain.cluster import Cluster
from domain.cluster_config import MASTER_NAME
from engine import audit
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of
from engine.nodes import endpoint as node_endpoint
from engine.ports import SecretStore
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("sentinel-events")

CHANNELS = ("+sdown", "-sdown", "+odown", "-odown", "+switch-master")
FAILOVER = "failover by the Sentinels"  # the reason of a PrimaryChanged they made, heard or polled
SUBSCRIBED_WITHIN_S = 3.0  # a round waits this long at most for new subscriptions to listen
SAVE_ATTEMPTS = 5  # another writer saved the Cluster meanwhile: decided again on what it recorded
KEPT = 1000  # facts kept in memory for those who wait for one (tests)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True)
class Said:
    """One notification, read: what a Sentinel says of the instance at `instance` ("address:port")."""

    channel: str  # one of CHANNELS
    instance: str  # for +switch-master, the new primary
    master: str  # the name of the primary it is about
    old: str | None = None  # for +switch-master, the former primary

    @property
    def kind(self) -> str:
        return self.channel[1:]  # sdown, odown, switch-master

    @property
    def down(self) -> bool:
        return self.channel.startswith("+")


def read(channel: str, data: str) -> Said | None:
    """`<instance-type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>` (a master names no
    master after its port; +odown adds `#quorum n/q`); `+switch-master` is `<master-name> <old-ip>
    <old-port> <new-ip> <new-port>`. None for anything else."""
    words = data.split()
    if channel == "+switch-master":
        if len(words) != 5 or not (words[2].isdigit() and words[4].isdigit()):
            return None
        return Said(channel, f"{words[3]}:{words[4]}", words[0], old=f"{words[1]}:{words[2]}")
    if channel not in CHANNELS or len(words) < 4 or not words[3].isdigit():
        return None
    instance_type, name, address, port = words[:4]
    if instance_type == "master":
        master = name
    elif instance_type in ("slave", "replica", "sentinel") and len(words) >= 6 and words[4] == "@":
        master = words[5]
    else:
        return None
    return Said(channel, f"{address}:{port}", master)


def address_of(node: dict) -> str:
    return f"{node['address']}:{node['port']}"


def node_at(cluster: Cluster, instance: str) -> dict | None:
    """The cluster's node at "address:port" now (placed, running or down); None for anything else."""
    return next((n for n in cluster.live_nodes if address_of(n) == instance), None)


def record(cluster: Cluster, said: Said, seen_by: str, at: str) -> dict | None:
    """What the Sentinel `seen_by` (its node's ID) said at `at`, recorded on `cluster` when it is news;
    returns the fact recorded, or None: nothing new, or about nothing of this cluster's."""
    node = node_at(cluster, said.instance) if said.master == MASTER_NAME else None
    if node is None:
        return None
    if said.kind == "switch-master":
        old = cluster.primary_node
        if node["role"] != "data" or node["id"] == cluster.primary:
            return None
        if old is not None and address_of(old) != said.old:
            return None  # a switch from an earlier primary than the one recorded: a late echo of a failover
        cluster.change_primary(new=node["id"], reason=FAILOVER, observed_at=at)
        return dict(fact="PrimaryChanged", old=old and old["id"], new=node["id"], at=at, seen_by=seen_by)
    before = len(cluster.pending_events)
    if said.down:
        cluster.sentinels_saw_down(node["id"], said.kind, seen_by, at)
    else:
        cluster.sentinels_saw_up(node["id"], said.kind, seen_by, at)
    if len(cluster.pending_events) == before:
        return None  # another Sentinel said it first
    fact = "SentinelsSawDown" if said.down else "SentinelsSawUp"
    return dict(fact=fact, node=node["id"], kind=said.kind, at=at, seen_by=seen_by)


class SentinelEvents:
    """One subscription per Sentinel of every running Business cluster, and what they say recorded."""

    def __init__(self, events: EventLog, secrets: SecretStore, listen: Callable, clock: Callable[[], str] = utc_now,
                 retry_s: tuple[float, float] = (0.2, 2.0)):
        """`listen`: RedisAdmin.sentinel_notices (tests give their own)."""
        self.events, self.secrets, self.listen, self.clock = events, secrets, listen, clock
        self.on_failover: Callable[[str], Awaitable] | None = None  # called with the addon on a +switch-master
        self.retry_s = retry_s  # first and longest wait before subscribing again to a Sentinel
        self._tasks: dict[tuple[str, str, str], asyncio.Task] = {}  # (addon, Sentinel's node ID, address)
        self._locks: dict[str, asyncio.Lock] = {}
        self._recorded = asyncio.Condition()
        self.recorded: deque[dict] = deque(maxlen=KEPT)  # facts recorded, by a message or by the polling
        self._primary_changes: list[dict] = []  # not yet returned by a round

    def lock(self, addon: str) -> asyncio.Lock:
        """Held by whoever records what the Sentinels say about `addon`: a message, or the polling."""
        return self._locks.setdefault(addon, asyncio.Lock())

    @property
    def following(self) -> set[tuple[str, str, str]]:
        return {key for key, task in self._tasks.items() if not task.done()}

    async def look(self, addons: Iterable[str]) -> set[tuple[str, str, str]]:
        """Subscribed to the Sentinels these clusters have now, and to no other (a cluster gone, a
        Sentinel replaced: node IDs change); returns once each new subscription listens or has failed
        once (it keeps trying while its Sentinel is one of the cluster's)."""
        wanted = {}
        for addon in addons:
            cluster = await cluster_of(self.events, addon)
            for node in cluster.live_nodes:
                if node["role"] == "sentinel":
                    wanted[(addon, node["id"], address_of(node))] = node
        gone = [self._tasks.pop(key) for key in set(self._tasks) - set(wanted)]
        await self._cancel(gone)
        started = []
        for key, node in wanted.items():
            if key not in self._tasks:
                ready = asyncio.Event()
                # none of the caller's log bindings; what a Sentinel's event makes is the engine's own doing
                self._tasks[key] = asyncio.create_task(self._follow(key[0], node, ready), name=f"sentinel-{key[1]}",
                                                       context=audit.context_for(audit.ENGINE))
                started.append(asyncio.create_task(ready.wait()))
        if started:
            await asyncio.wait(started, timeout=SUBSCRIBED_WITHIN_S)
            await self._cancel(started)
        return set(wanted)

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        await self._cancel(tasks)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task]) -> None:
        """Cancelled again until they end: on Python 3.11 a cancellation that arrives as an inner
        asyncio.wait_for completes is lost (redis-py sends commands under one)."""
        pending = set(tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, addon: str, sentinel: dict, ready: asyncio.Event) -> None:
        endpoint = node_endpoint(sentinel, self.secrets.password_for(sentinel_secret(addon)))
        bound = log.bind(addon=addon, sentinel=sentinel["id"])
        wait = self.retry_s[0]
        while True:
            try:
                async with self.listen(endpoint, CHANNELS) as notices:
                    ready.set()
                    wait = self.retry_s[0]
                    bound.debug("following the Sentinel")
                    async for channel, data in notices:
                        await self.heard(addon, sentinel["id"], channel, data)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the Sentinel down or replaced: subscribed again, or ended by look()
                bound.debug("Sentinel not followed for now", error=str(error) or type(error).__name__)
            ready.set()
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.retry_s[1])

    async def heard(self, addon: str, sentinel_id: str, channel: str, data: str) -> dict | None:
        """A message from a Sentinel of `addon`'s: recorded if it is news; returns the fact recorded."""
        at = self.clock()  # when it arrived, not when the lock was had
        said = read(channel, data)
        if said is None:
            return None
        try:
            async with self.lock(addon):
                fact = await self._record(addon, said, sentinel_id, at)
        except Exception as error:  # the store failing for a moment: the polling still sees a failover
            log.warning("a Sentinel's message not recorded", addon=addon, channel=channel, error=str(error))
            return None
        if fact is not None:
            log.info("the Sentinels said", addon=addon, **{k: v for k, v in fact.items() if k != "at"})
            await self.note({"addon": addon, **fact})
            if fact["fact"] == "PrimaryChanged" and self.on_failover is not None:
                await self.on_failover(addon)  # the new primary takes writes now, not at the next round
        return fact

    async def _record(self, addon: str, said: Said, sentinel_id: str, at: str) -> dict | None:
        for _ in range(SAVE_ATTEMPTS):
            cluster = await cluster_of(self.events, addon)
            fact = record(cluster, said, sentinel_id, at)
            if fact is None:
                return None
            try:
                await self.events.save(cluster)
                return fact
            except IntegrityError:
                continue  # saved meanwhile by another writer: decided again on what it recorded
        raise IntegrityError(f"the cluster of {addon} kept changing under a Sentinel's message")

    async def note(self, fact: dict) -> None:
        """A fact recorded (here or by the polling): kept for those waiting for one, and a failover for
        the next round to return."""
        async with self._recorded:
            self.recorded.append(fact)
            if fact["fact"] == "PrimaryChanged":
                self._primary_changes.append(fact)
            self._recorded.notify_all()

    def primary_changes(self) -> list[dict]:
        """The failovers recorded since the last call."""
        changes, self._primary_changes = self._primary_changes, []
        return changes

    async def wait_for(self, found: Callable[[list[dict]], bool], timeout: float = 30.0) -> list[dict]:
        """The facts recorded so far, once `found(facts)` holds: tests wait for a fact with this, not a sleep."""
        async with asyncio.timeout(timeout):
            async with self._recorded:
                await self._recorded.wait_for(lambda: found(list(self.recorded)))
        return list(self.recorded)
