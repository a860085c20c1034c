"""The Sentinels' notifications as facts, on real Docker, Redis and Sentinel: a Business addon's
primary killed is seen down by the Sentinels (+sdown, then +odown) and failed over (+switch-master);
each is recorded on the Cluster once, with when it arrived, before any watcher round asks the
Sentinels; the event log, the read models and a replay show the same; the node back ends the episode.
A failover no message told of (the engine was not following yet) is recorded by the round that asks."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from domain.cluster_config import MASTER_NAME
from engine.nodes import endpoint
from engine.sentinel_events import FAILOVER
from tests.integration.business import business_addon, container, eventually, nodes_by_role, primary_of, watcher_round


def when(at: str) -> datetime:
    return datetime.fromisoformat(at)


def of(addon: str, fact: str, **fields):
    return lambda facts: [f for f in facts if f["addon"] == addon and f["fact"] == fact
                          and all(f.get(k) == v for k, v in fields.items())]


async def test_a_killed_primary_is_seen_down_and_failed_over_each_fact_recorded_once_as_it_arrives(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    sentinels = {n["id"] for n in before["sentinel"]}
    notices = engine.watcher.failovers.notices
    assert await engine.watcher.failovers.look() == []  # a round: subscribed to each Sentinel of the cluster
    assert {key[1] for key in notices.following if key[0] == addon} == sentinels

    killed_at = datetime.now(timezone.utc)
    await (await container(engine, primary)).kill()

    # No watcher round runs meanwhile (tests set no interval): only the notifications can record these.
    facts = await notices.wait_for(of(addon, "PrimaryChanged"), timeout=30)
    [sdown] = of(addon, "SentinelsSawDown", kind="sdown")(facts)
    [odown] = of(addon, "SentinelsSawDown", kind="odown")(facts)
    [changed] = of(addon, "PrimaryChanged")(facts)
    assert sdown["node"] == odown["node"] == primary["id"]
    assert (changed["old"], changed["new"]) == (primary["id"], replica["id"])
    assert {sdown["seen_by"], odown["seen_by"], changed["seen_by"]} <= sentinels
    # In the order the Sentinels said them, each stamped when it arrived (within down-after, 1 s, of the
    # last answer the primary gave, and the failover about 1 s later).
    assert killed_at < when(sdown["at"]) <= when(odown["at"]) <= when(changed["at"]) <= datetime.now(timezone.utc)

    assert await engine.watcher.failovers.look() == [changed]  # the round returns the failover heard...
    assert await engine.watcher.failovers.look() == []  # ...once: the polling finds it recorded already
    await engine.follower.wait_until(await engine.events.max_position())
    page = await engine.event_page(after=0, limit=2000)
    cluster_events = [e for e in page if e["type"] in ("Cluster.SentinelsSawDown", "Cluster.PrimaryChanged")
                      and e["data"].get("reason") != "provisioned"]
    assert [(e["type"], e["data"].get("kind"), e["data"].get("node_id") or e["data"]["new"]) for e in cluster_events] == [
        ("Cluster.SentinelsSawDown", "sdown", primary["id"]), ("Cluster.SentinelsSawDown", "odown", primary["id"]),
        ("Cluster.PrimaryChanged", None, replica["id"])]  # once each, though each Sentinel said each
    switch = cluster_events[-1]["data"]
    assert (switch["old"], switch["new"], switch["reason"], switch["observed_at"]) == (
        primary["id"], replica["id"], FAILOVER, changed["at"])
    shown = json.dumps(page)
    for secret in (engine.secrets.password_for(addon), engine.secrets.password_for(f"{addon}-sentinels")):
        assert secret not in shown
    nodes = {n["id"]: n for n in await engine.nodes(app_name, addon)}
    assert nodes[primary["id"]]["seen_down"] == f"odown since {odown['at']}, seen first by {odown['seen_by']}"
    assert nodes[replica["id"]]["is_primary"] and nodes[replica["id"]]["seen_down"] is None

    # The engine starts the old primary again (a replica now): the first Sentinel to reach it ends the episode.
    async def back() -> list[dict]:
        await watcher_round(engine)
        return of(addon, "SentinelsSawUp", node=primary["id"])(list(notices.recorded))

    [up] = await eventually(back, timeout=60, every=0.5)
    # -sdown or -odown, whichever a Sentinel said first (each Sentinel says its own, in its own time)
    assert up["kind"] in ("sdown", "odown") and up["seen_by"] in sentinels and when(up["at"]) > when(changed["at"])
    await engine.follower.wait_until(await engine.events.max_position())
    assert next(n for n in await engine.nodes(app_name, addon) if n["id"] == primary["id"])["seen_down"] is None
    episodes = {(r[1], r[2]): r for r in engine.views.snapshot()["tables"]["cluster_sightings"] if r[0] == addon}
    assert set(episodes) == {(primary["id"], "sdown"), (primary["id"], "odown")}
    assert all(r[5] == up["at"] for r in episodes.values())  # both ended when it answered again
    replay = await engine.replay()
    assert replay["matches"], replay


async def test_a_failover_no_message_told_of_is_recorded_once_by_the_round_that_asks(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    # Killed before any round: the engine follows no Sentinel yet, as when it was down during the failover.
    await (await container(engine, primary)).kill()
    password = engine.secrets.password_for(f"{addon}-sentinels")

    async def all_switched() -> bool:  # each has published its +switch-master: none is left to hear
        views = [await engine.redis.sentinel_view(endpoint(s, password), MASTER_NAME)
                 for s in before["sentinel"]]
        return all(v["primary"] == f"{replica['address']}:{replica['port']}" for v in views)

    await eventually(all_switched, timeout=30)
    [change] = await engine.watcher.failovers.look()  # subscribes, then asks: the asking records it
    assert (change["old"], change["new"], change["seen_by"]) == (primary["id"], replica["id"], None)
    assert await engine.watcher.failovers.look() == []
    await engine.follower.wait_until(await engine.events.max_position())
    changes = [e["data"] for e in await engine.event_page(after=0, limit=2000)
               if e["type"] == "Cluster.PrimaryChanged" and e["data"]["reason"] != "provisioned"]
    assert [(c["old"], c["new"], c["reason"], c["observed_at"]) for c in changes] == [
        (primary["id"], replica["id"], FAILOVER, change["at"])]
    replay = await engine.replay()
    assert replay["matches"], replay
