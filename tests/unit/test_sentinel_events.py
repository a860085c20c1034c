"""The Sentinels' notifications as facts on the Cluster (engine/sentinel_events.py): each message read,
mapped to the node at its address, recorded once however many Sentinels say it; the subscriptions
follow the cluster's Sentinels as they are replaced; the read model shows each episode."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import pytest

from domain.cluster import Cluster, node_record
from engine import audit
from engine.clusters import promote
from engine.described import event_as_dict
from engine.sentinel_events import CHANNELS, FAILOVER, Said, SentinelEvents, read, record
from engine.store import IntegrityError
from projections import ReadModels
from tests.unit.fakes import FakeSecretStore, InMemoryEventLog
from tests.unit.given import replayed, then, types

ADDON = "shop-4242"
PRIMARY, REPLICA = "127.0.1.1:30000", "127.0.2.1:30000"
S1, S2, S3 = "127.0.1.1:30002", "127.0.2.1:30002", "127.0.3.1:30002"


NODES = [("d1", "data", PRIMARY), ("d2", "data", REPLICA), ("s1", "sentinel", S1), ("s2", "sentinel", S2),
         ("s3", "sentinel", S3)]


def a_cluster() -> Cluster:
    """Two data nodes (d1 the primary) and three Sentinels, running; its history collected away."""
    cluster = formed()
    then(cluster)
    return cluster


def formed() -> Cluster:
    cluster = Cluster(addon=ADDON, app="shop")
    for name, role, where in NODES:
        address, port = where.split(":")
        host = {"127.0.1.1": "host-a", "127.0.2.1": "host-b", "127.0.3.1": "host-c"}[address]
        cluster.place_node(node_record(role, host, address, int(port), name, f"{name}-data", 256, "7.0.15"))
        cluster.mark_node_started(name)
    promote(cluster, "d1", "provisioned")
    return cluster


def sdown(kind: str, address: str, sign: str = "+") -> tuple[str, str]:
    ip, port = address.split(":")
    if kind == "master":
        return f"{sign}sdown", f"master primary {ip} {port}"
    return f"{sign}sdown", f"{kind} {address} {ip} {port} @ primary 127.0.1.1 30000"


def heard(cluster: Cluster, channel: str, data: str, seen_by: str, at: str) -> dict | None:
    return record(cluster, read(channel, data), seen_by, at)


# -- reading a message -----------------------------------------------------------------------

@pytest.mark.parametrize("channel, data, said", [
    ("+sdown", "master primary 127.0.1.1 30000", Said("+sdown", PRIMARY, "primary")),
    ("-sdown", "slave 127.0.2.1:30000 127.0.2.1 30000 @ primary 127.0.1.1 30000", Said("-sdown", REPLICA, "primary")),
    ("+sdown", "sentinel 7f3c0a 127.0.3.1 30002 @ primary 127.0.1.1 30000", Said("+sdown", S3, "primary")),
    ("+odown", "master primary 127.0.1.1 30000 #quorum 2/2", Said("+odown", PRIMARY, "primary")),
    ("-odown", "master primary 127.0.1.1 30000", Said("-odown", PRIMARY, "primary")),
    ("+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000", Said("+switch-master", REPLICA, "primary", PRIMARY)),
])
def test_each_notification_is_read_as_what_it_says_of_which_instance(channel, data, said):
    assert read(channel, data) == said
    assert said.kind == channel[1:] and said.down == channel.startswith("+")


@pytest.mark.parametrize("channel, data", [
    ("+sdown", ""), ("+sdown", "master primary 127.0.1.1"), ("+sdown", "master primary 127.0.1.1 port"),
    ("+sdown", "slave 127.0.2.1:30000 127.0.2.1 30000"),  # a replica always names its primary
    ("+sdown", "cluster x 127.0.2.1 30000 @ primary 127.0.1.1 30000"), ("+switch-master", "primary 127.0.1.1 30000"),
    ("+tilt", "#tilt mode entered"), ("+failover-end", "master primary 127.0.1.1 30000"),
])
def test_anything_else_is_not_read(channel, data):
    assert read(channel, data) is None


def test_the_channels_subscribed_to_are_the_five_of_the_issue():
    assert set(CHANNELS) == {"+sdown", "-sdown", "+odown", "-odown", "+switch-master"}


# -- recorded once -----------------------------------------------------------------------------

def test_each_sentinel_says_a_node_is_down_the_first_is_recorded_with_who_said_it():
    cluster = a_cluster()
    facts = [heard(cluster, *sdown("master", PRIMARY), seen_by=s, at=f"t{i}") for i, s in enumerate(["s2", "s1", "s3"])]
    assert facts == [dict(fact="SentinelsSawDown", node="d1", kind="sdown", at="t0", seen_by="s2"), None, None]
    [event] = then(cluster)
    assert (type(event), event.node_id, event.kind, event.seen_by, event.at) == (Cluster.SentinelsSawDown, "d1", "sdown",
                                                                                  "s2", "t0")
    assert cluster.seen_down == {"d1": {"sdown": {"seen_by": "s2", "at": "t0"}}}


def test_the_same_node_seen_down_as_a_master_and_then_as_a_replica_is_one_episode():
    cluster = a_cluster()
    heard(cluster, *sdown("master", PRIMARY), seen_by="s1", at="t0")
    assert heard(cluster, *sdown("slave", PRIMARY), seen_by="s1", at="t5") is None  # after the switch, a replica
    assert types(then(cluster)) == [Cluster.SentinelsSawDown]


def test_an_odown_is_recorded_once_per_episode_and_a_node_reached_again_ends_both_kinds():
    cluster = a_cluster()
    heard(cluster, *sdown("master", PRIMARY), seen_by="s1", at="t0")
    for s in ("s1", "s2", "s3"):
        heard(cluster, "+odown", "master primary 127.0.1.1 30000 #quorum 2/2", seen_by=s, at="t1")
    assert heard(cluster, *sdown("slave", PRIMARY, "-"), seen_by="s3", at="t9")["fact"] == "SentinelsSawUp"
    assert heard(cluster, *sdown("slave", PRIMARY, "-"), seen_by="s1", at="t9") is None  # the others say it too
    assert heard(cluster, "-odown", "master primary 127.0.1.1 30000", seen_by="s2", at="t9") is None  # ended already
    events = then(cluster)
    assert [(type(e).__name__, e.kind, e.seen_by) for e in events] == [
        ("SentinelsSawDown", "sdown", "s1"), ("SentinelsSawDown", "odown", "s1"), ("SentinelsSawUp", "sdown", "s3")]
    assert cluster.seen_down == {}
    heard(cluster, *sdown("master", PRIMARY), seen_by="s2", at="t20")  # down again: another episode
    assert types(then(cluster)) == [Cluster.SentinelsSawDown]


def test_a_minus_odown_ends_the_odown_episode_only():
    cluster = a_cluster()
    heard(cluster, *sdown("master", PRIMARY), seen_by="s1", at="t0")
    heard(cluster, "+odown", "master primary 127.0.1.1 30000 #quorum 2/2", seen_by="s1", at="t1")
    heard(cluster, "-odown", "master primary 127.0.1.1 30000", seen_by="s1", at="t2")
    assert cluster.seen_down == {"d1": {"sdown": {"seen_by": "s1", "at": "t0"}}}
    assert heard(cluster, "-odown", "master primary 127.0.1.1 30000", seen_by="s2", at="t3") is None


def test_messages_about_no_node_of_the_cluster_are_ignored():
    cluster = a_cluster()
    cluster.retire_node("d2")
    then(cluster)
    assert heard(cluster, *sdown("slave", "127.0.9.1:30000"), seen_by="s1", at="t0") is None  # no node there
    assert heard(cluster, *sdown("slave", REPLICA), seen_by="s1", at="t0") is None  # retired
    assert heard(cluster, "+sdown", "master other 127.0.1.1 30000", seen_by="s1", at="t0") is None  # not our master
    assert then(cluster) == []


def test_a_sentinel_seen_down_is_recorded_on_its_node():
    cluster = a_cluster()
    assert heard(cluster, *sdown("sentinel", S3), seen_by="s1", at="t0")["node"] == "s3"


def test_a_switch_master_records_the_failover_once_with_the_old_and_new_node_and_when_it_arrived():
    cluster = a_cluster()
    switch = ("+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000")
    assert heard(cluster, *switch, seen_by="s2", at="t3") == dict(fact="PrimaryChanged", old="d1", new="d2", at="t3",
                                                                  seen_by="s2")
    assert heard(cluster, *switch, seen_by="s1", at="t4") is None and heard(cluster, *switch, seen_by="s3", at="t4") is None
    [event] = then(cluster)
    assert (type(event), event.old, event.new, event.reason, event.observed_at) == (
        Cluster.PrimaryChanged, "d1", "d2", FAILOVER, "t3")
    assert cluster.primary == "d2" and cluster.primaries[-1]["old"] == "d1"


def test_a_switch_from_another_primary_than_the_recorded_one_is_left_to_the_polling():
    cluster = a_cluster()
    cluster.retire_node("d1")  # replaced: no primary recorded, the polling decides which one is
    cluster.place_node(node_record("data", "host-c", "127.0.3.1", 30009, "d3", "d3-data", 256, "7.0.15"))
    promote(cluster, "d3", "replaced")
    then(cluster)
    assert heard(cluster, "+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000", seen_by="s3", at="t3") is None
    assert cluster.primary == "d3"


def test_a_switch_to_what_is_not_a_data_node_is_ignored():
    cluster = a_cluster()
    assert heard(cluster, "+switch-master", f"primary 127.0.1.1 30000 {S2.replace(':', ' ')}", seen_by="s1", at="t") is None


def test_a_restarted_engine_rebuilds_the_same_cluster_and_the_events_hold_no_secret():
    cluster = formed()
    events = cluster.collect_events()
    heard(cluster, *sdown("master", PRIMARY), seen_by="s1", at="t0")
    heard(cluster, "+odown", "master primary 127.0.1.1 30000 #quorum 2/2", seen_by="s2", at="t1")
    heard(cluster, "+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000", seen_by="s2", at="t2")
    events += cluster.collect_events()
    rebuilt = replayed(events, Cluster)
    assert (rebuilt.seen_down, rebuilt.primary, rebuilt.primaries) == (cluster.seen_down, "d2", cluster.primaries)
    shown = json.dumps([event_as_dict(i, e) for i, e in enumerate(events, 1)])
    assert "password" not in shown and "pass" not in shown


def test_the_read_model_shows_each_episode_and_what_the_sentinels_say_of_the_node_now():
    cluster = formed()
    heard(cluster, *sdown("master", PRIMARY), seen_by="s1", at="t0")
    heard(cluster, "+odown", "master primary 127.0.1.1 30000 #quorum 2/2", seen_by="s2", at="t1")
    heard(cluster, "+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000", seen_by="s2", at="t2")
    heard(cluster, *sdown("sentinel", S3), seen_by="s1", at="t5")
    views = ReadModels(":memory:")
    for position, event in enumerate(cluster.collect_events(), 1):
        views.process(position, event)
    assert {n["id"]: n["seen_down"] for n in views.nodes(ADDON) if n["seen_down"]} == {
        "d1": "odown since t1, seen first by s2", "s3": "sdown since t5, seen first by s1"}
    heard(cluster, *sdown("slave", PRIMARY, "-"), seen_by="s3", at="t9")  # the old primary back, as a replica
    [event] = cluster.collect_events()
    views.process(position + 1, event)
    assert views._rows("SELECT node, kind, seen_by, since, until, ended_by FROM cluster_sightings ORDER BY since") == [
        dict(node="d1", kind="sdown", seen_by="s1", since="t0", until="t9", ended_by="s3"),
        dict(node="d1", kind="odown", seen_by="s2", since="t1", until="t9", ended_by="s3"),
        dict(node="s3", kind="sdown", seen_by="s1", since="t5", until=None, ended_by=None)]
    assert {n["id"]: n["seen_down"] for n in views.nodes(ADDON) if n["seen_down"]} == {
        "s3": "sdown since t5, seen first by s1"}
    assert views._rows("SELECT old, new, reason, at FROM cluster_primaries ORDER BY position") == [
        dict(old=None, new="d1", reason="provisioned", at=views._rows("SELECT at FROM cluster_primaries")[0]["at"]),
        dict(old="d1", new="d2", reason=FAILOVER, at="t2")]
    views.close()


# -- the subscriptions ------------------------------------------------------------------------

class FakeSentinels:
    """Sentinels in memory: each subscription is a queue the test publishes into, in order."""

    def __init__(self):
        self.queues: dict[str, asyncio.Queue] = {}
        self.refusing: set[str] = set()
        self.passwords: set[str] = set()

    @asynccontextmanager
    async def listen(self, node, channels):
        where = f"{node.address}:{node.port}"
        assert tuple(channels) == CHANNELS
        self.passwords.add(node.password)
        if where in self.refusing:
            raise ConnectionError(f"{where} refused")
        queue = self.queues[where] = asyncio.Queue()
        try:
            yield self._published(queue)
        finally:
            if self.queues.get(where) is queue:
                del self.queues[where]

    @staticmethod
    async def _published(queue):
        while True:
            item = await queue.get()
            if isinstance(item, Exception):
                raise item
            yield item

    def publish(self, where: str, channel: str, data: str) -> None:
        self.queues[where].put_nowait((channel, data))


@pytest.fixture
async def events():
    log = InMemoryEventLog()
    await log.open()
    yield log
    await log.shutdown()


@pytest.fixture
async def followed(events):
    sentinels, secrets = FakeSentinels(), FakeSecretStore()
    notices = SentinelEvents(events, secrets, listen=sentinels.listen, clock=iter(f"t{i}" for i in range(100)).__next__,
                             retry_s=(0.01, 0.05))
    await events.save(formed())
    yield notices, sentinels, secrets
    await notices.stop()


def recorded(fact: str, count: int = 1):
    return lambda facts: len([f for f in facts if f["fact"] == fact]) >= count


async def test_each_sentinel_of_a_running_cluster_is_subscribed_to_with_the_sentinels_password(followed):
    notices, sentinels, secrets = followed
    assert {key[1] for key in await notices.look([ADDON])} == {"s1", "s2", "s3"}
    assert set(sentinels.queues) == {S1, S2, S3}
    assert sentinels.passwords == {secrets.password_for(f"{ADDON}-sentinels")}
    await notices.look([ADDON])  # a round later: the same subscriptions
    assert len(notices.following) == 3


async def test_three_sentinels_saying_it_record_one_fact_and_the_failover_is_returned_by_a_round(followed, events):
    notices, sentinels, _ = followed
    await notices.look([ADDON])
    for where in (S2, S1, S3):
        sentinels.publish(where, *sdown("master", PRIMARY))
    for where in (S1, S2, S3):
        sentinels.publish(where, "+switch-master", "primary 127.0.1.1 30000 127.0.2.1 30000")
    await notices.wait_for(recorded("PrimaryChanged"))
    for where in (S1, S2, S3):  # behind everything they said before, in each queue
        sentinels.publish(where, *sdown("slave", REPLICA))
    facts = await notices.wait_for(recorded("SentinelsSawDown", 2))
    assert [(f["fact"], f.get("node") or f["new"]) for f in facts] == [
        ("SentinelsSawDown", "d1"), ("PrimaryChanged", "d2"), ("SentinelsSawDown", "d2")]
    cluster = await events.get(Cluster.id_for(ADDON))
    assert cluster.primary == "d2" and set(cluster.seen_down) == {"d1", "d2"}
    assert [c["new"] for c in notices.primary_changes()] == ["d2"] and notices.primary_changes() == []


async def test_a_save_that_meets_another_writers_is_decided_again_on_the_fresh_cluster(followed, events):
    notices, sentinels, _ = followed
    await notices.look([ADDON])
    real_save, raced = events.save, []

    async def save_after_another_writer(*aggregates):
        if not raced:  # another writer records a fact on the same cluster first
            raced.append(True)
            other = await events.get(Cluster.id_for(ADDON))
            other.sentinels_saw_down("d2", "sdown", "s3", "t-other")
            await real_save(other)
        return await real_save(*aggregates)

    events.save = save_after_another_writer
    sentinels.publish(S1, *sdown("master", PRIMARY))
    sentinels.publish(S1, *sdown("slave", REPLICA))  # the other writer recorded this one already
    sentinels.publish(S1, *sdown("sentinel", S3))
    facts = await notices.wait_for(lambda facts: any(f["node"] == "s3" for f in facts))
    assert [f["node"] for f in facts] == ["d1", "s3"]
    cluster = await events.get(Cluster.id_for(ADDON))
    assert cluster.seen_down["d2"]["sdown"]["seen_by"] == "s3" and "d1" in cluster.seen_down


async def test_a_lost_subscription_is_made_again(followed):
    notices, sentinels, _ = followed
    await notices.look([ADDON])
    sentinels.queues[S1].put_nowait(ConnectionError("the Sentinel went away"))
    while S1 in sentinels.queues:  # the subscription ends...
        await asyncio.sleep(0)
    sentinels.refusing.add(S1)  # ...its Sentinel refuses a while...
    await asyncio.sleep(0.05)
    sentinels.refusing.clear()
    while S1 not in sentinels.queues:  # ...and it is subscribed to again once it answers
        await asyncio.sleep(0.005)
    sentinels.publish(S1, *sdown("master", PRIMARY))
    assert (await notices.wait_for(recorded("SentinelsSawDown")))[0]["seen_by"] == "s1"


async def test_a_replaced_sentinel_is_followed_in_place_of_the_lost_one_and_a_cluster_gone_not_at_all(followed, events):
    notices, sentinels, _ = followed
    await notices.look([ADDON])
    cluster = await events.get(Cluster.id_for(ADDON))
    cluster.place_node(node_record("sentinel", "host-c", "127.0.3.1", 30005, "s4", "s4-data", 256, "7.0.15"))
    cluster.mark_node_started("s4")
    cluster.retire_node("s3")
    await events.save(cluster)
    assert {key[1] for key in await notices.look([ADDON])} == {"s1", "s2", "s4"}
    assert set(sentinels.queues) == {S1, S2, "127.0.3.1:30005"}
    sentinels.publish("127.0.3.1:30005", *sdown("master", PRIMARY))
    assert (await notices.wait_for(recorded("SentinelsSawDown")))[0]["seen_by"] == "s4"
    assert await notices.look([]) == set() and notices.following == set() and sentinels.queues == {}


async def test_a_round_waits_for_no_sentinel_that_does_not_answer(followed):
    notices, sentinels, _ = followed
    sentinels.refusing.add(S3)
    await asyncio.wait_for(notices.look([ADDON]), timeout=1)
    assert set(sentinels.queues) == {S1, S2}  # S3 is tried again, while it is one of the cluster's


async def test_a_store_failing_for_a_moment_keeps_the_subscription(followed, events):
    notices, sentinels, _ = followed
    await notices.look([ADDON])
    real_save, failed = events.save, []

    async def failing_once(*aggregates):
        if not failed:
            failed.append(True)
            raise IntegrityError("saved meanwhile")  # five times in a row would give up; once is decided again
        return await real_save(*aggregates)

    events.save = failing_once
    sentinels.publish(S2, *sdown("master", PRIMARY))
    assert (await notices.wait_for(recorded("SentinelsSawDown")))[0]["seen_by"] == "s2"
    assert S2 in sentinels.queues


async def test_a_subscription_that_loses_a_cancellation_still_ends_when_the_engine_stops(followed):
    notices, sentinels, _ = followed
    lost = []

    @asynccontextmanager
    async def deaf(node, channels):  # as a library that swallows one cancellation would
        async def published():
            while True:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    if lost:
                        raise
                    lost.append(True)
            yield  # pragma: no cover

        yield published()

    notices.listen = deaf
    await notices.look([ADDON])
    await asyncio.wait_for(notices.stop(), timeout=5)
    assert lost and notices.following == set()


async def test_what_a_sentinel_said_is_recorded_as_the_engines_doing(followed, events):
    notices, sentinels, _ = followed
    with audit.requested_by(audit.OPERATOR):  # a round started by whoever: the facts are the engine's
        await notices.look([ADDON])
    sentinels.publish(S1, *sdown("master", PRIMARY))
    await notices.wait_for(recorded("SentinelsSawDown"))
    _, fact = (await events.select(0, 1000))[-1]
    assert type(fact) is Cluster.SentinelsSawDown and audit.recorded_by(fact) == audit.ENGINE.shown()
