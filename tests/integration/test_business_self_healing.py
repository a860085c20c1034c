"""Self-healing of a Business cluster (real Docker, Redis, Sentinel and HAProxy, a writer through
REDIS_URL): a lost node is replaced by a new one on a host with room and the right spread, the
others are told, and the cluster comes back to full redundancy by itself; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as redis

from domain.cluster_config import MASTER_NAME
from engine.nodes import endpoint
from tests.integration.business import (Writer, business_addon, container, direct, eventually, nodes_by_role,
                                        primary_of, watcher_round)


async def replaced(engine, app: str, addon: str, lost: dict, timeout: float = 120) -> dict:
    """Watcher rounds until a replacement of `lost` has succeeded; returns its operation."""
    async def done():
        await watcher_round(engine)
        ops = [o for o in await engine.operations(addon) if o["kind"] == "replace_node"]
        if ops and ops[0]["status"] in ("failed", "compensated"):
            raise AssertionError(f"the replacement failed: {ops[0]}")
        return next((o for o in ops if o["status"] == "succeeded"), None)

    operation = await eventually(done, timeout=timeout, every=0.5)
    nodes = await engine.nodes(app, addon)
    assert next(n for n in nodes if n["id"] == lost["id"])["state"] == "retired"
    return operation


NO_GOOD_REPLICA = "-failover-abort-no-good-slave"


async def first_of(notices, timeout: float) -> tuple[str, str]:
    """The first (channel, message) any of these subscriptions publishes."""
    waits = [asyncio.ensure_future(anext(n)) for n in notices]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"no Sentinel published {NO_GOOD_REPLICA} within {timeout} s"
        return done.pop().result()
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.wait(waits, timeout=5)  # one that lost its cancellation ends as its subscription closes


async def redundant(engine, app: str, addon: str) -> bool:
    await watcher_round(engine)
    return (await engine.addon(app, addon))["status"] == "running"


async def test_a_replica_lost_is_replaced_and_writes_go_on_meanwhile(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)

    await (await container(engine, replica)).delete(force=True)  # killed and its container gone

    async def writes_go_on() -> bool:
        await watcher_round(engine)
        return await writer.wrote_more()

    await eventually(writes_go_on, timeout=30)  # once the engine has lowered the requirement (no replica in sync)
    await replaced(engine, app_name, addon, replica)
    after = await nodes_by_role(engine, app_name, addon)
    [new] = [n for n in after["data"] if n["id"] != primary["id"]]
    assert new["host"] != primary["host"] and new["state"] == "running"  # the spread kept
    assert primary_of(after)["id"] == primary["id"]  # no failover for a replica
    await eventually(lambda: redundant(engine, app_name, addon), timeout=30)
    node = direct(primary, writer.password)
    assert (await node.config_get("min-replicas-to-write"))["min-replicas-to-write"] == "1"  # the requirement is back
    assert (await node.info("replication"))["connected_slaves"] == 1
    await node.aclose()
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []


async def test_a_sentinel_lost_is_replaced_without_a_failover_and_forgotten_by_the_others(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    lost = before["sentinel"][1]
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)

    await (await container(engine, lost)).delete(force=True)

    await replaced(engine, app_name, addon, lost)
    after = await nodes_by_role(engine, app_name, addon)
    assert primary_of(after)["id"] == primary_of(before)["id"]  # no failover
    assert len({n["host"] for n in after["sentinel"]}) == 3  # still one per host
    password = engine.secrets.password_for(f"{addon}-sentinels")
    for sentinel in after["sentinel"]:  # each knows exactly the two others: the lost one is forgotten
        view = await engine.redis.sentinel_view(endpoint(sentinel, password), MASTER_NAME)
        assert (view["sentinels"], len(view["sentinels_up"]), view["replicas"]) == (2, 2, 1), view
    assert not [e for e in await engine.event_page(after=0, limit=2000) if e["type"] == "Cluster.PrimaryChanged"
                and e["data"]["reason"] != "provisioned"]
    await eventually(lambda: redundant(engine, app_name, addon), timeout=30)
    await eventually(writer.wrote_more)
    await writer.stop()
    # No write refused (at most a reconnect: HAProxy's old process ends its sessions 10 s after a reload).
    assert writer.refused == set() and await writer.lost() == []


async def test_the_leader_haproxy_killed_clients_reconnect_to_the_same_address(engine, app_name):
    addon = await business_addon(engine, app_name)
    url = (await engine.environment(app_name))["REDIS_URL"]
    leader = next(n for n in (await nodes_by_role(engine, app_name, addon))["proxy"]
                  if f"{n['address']}:{n['port']}" in url)  # the one whose address is the entry's
    writer = Writer(url).start()
    await eventually(writer.wrote_more)

    await (await container(engine, leader)).kill()

    await eventually(writer.wrote_more, timeout=10)  # through the other HAProxy, bound to the same address
    assert (await engine.environment(app_name))["REDIS_URL"] == url

    async def back() -> bool:
        await watcher_round(engine)
        return next(n for n in await engine.nodes(app_name, addon) if n["id"] == leader["id"])["state"] == "running"

    await eventually(back, timeout=30)  # started again by the engine
    await writer.stop()
    assert await writer.lost() == []


async def test_the_primary_killed_fails_over_and_comes_back_as_a_replica_that_takes_no_write(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)

    await (await container(engine, primary)).kill()

    async def writes_go_on() -> bool:
        await engine.watcher.failovers.look()  # the healer not yet: its part is looked at below
        await engine.follower.wait_until(await engine.events.max_position())
        return await writer.wrote_more()

    await eventually(writes_go_on, timeout=30)
    assert primary_of(await nodes_by_role(engine, app_name, addon))["id"] == replica["id"]
    old = direct(primary, writer.password)

    async def back_unpromotable() -> bool:  # started again by the healer: a replica the Sentinels may not elect
        await engine.watcher.healer.look()
        try:
            return (await old.config_get("replica-priority"))["replica-priority"] == "0"
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    await eventually(back_unpromotable, timeout=30)
    await eventually(lambda: redundant(engine, app_name, addon), timeout=60)
    assert (await old.info("replication"))["role"] == "slave"
    assert (await old.config_get("replica-priority"))["replica-priority"] == "100"  # in sync: promotable again
    with pytest.raises(redis.ReadOnlyError):
        await old.set("to the old primary", "refused")
    await old.aclose()
    await writer.stop()
    assert await writer.lost() == []


async def test_a_paused_primary_never_acknowledges_a_write_once_it_wakes(engine, app_name):
    addon = await business_addon(engine, app_name)
    primary = primary_of(await nodes_by_role(engine, app_name, addon))
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)
    paused = await container(engine, primary)

    await paused.pause()  # longer than the Sentinels' detection (down-after 1 s) and failover

    async def failed_over() -> bool:
        await watcher_round(engine)
        return primary_of(await nodes_by_role(engine, app_name, addon))["id"] != primary["id"]

    await eventually(failed_over, timeout=30)
    await asyncio.sleep(2)
    await paused.unpause()
    await eventually(lambda: redundant(engine, app_name, addon), timeout=60)
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
    woken = direct(primary, writer.password)
    assert (await woken.info("replication"))["role"] == "slave"
    await woken.aclose()


async def test_a_returning_node_is_not_elected_before_it_is_in_sync(engine, app_name):
    """The race the failover benchmark found: the new primary fails while the old one is still
    coming back. Electing the returning node would throw away every write since its last save."""
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    first, second = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)
    await (await container(engine, first)).kill()

    async def failed_over() -> bool:
        await engine.watcher.failovers.look()
        return primary_of(await nodes_by_role(engine, app_name, addon))["id"] == second["id"]

    await eventually(failed_over, timeout=30)
    returning = direct(first, writer.password)

    async def back_unpromotable() -> bool:  # the follower is not let look again: it would raise the priority
        await engine.watcher.healer.look()
        try:
            return (await returning.config_get("replica-priority"))["replica-priority"] == "0"
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    await eventually(back_unpromotable, timeout=30)
    password = engine.secrets.password_for(f"{addon}-sentinels")
    async with AsyncExitStack() as told:
        # The Sentinel that leads the failover says it found no replica to elect (only it says so).
        notices = [await told.enter_async_context(engine.redis.sentinel_notices(
            endpoint(sentinel, password), [NO_GOOD_REPLICA])) for sentinel in before["sentinel"]]
        paused = await container(engine, second)
        await paused.pause()
        # Past down-after (1 s) and the Sentinels' wait before another failover of the same primary name
        # (2 × failover-timeout, 6 s, from the first one), they agree it is down and look for a replica.
        await first_of(notices, timeout=30)
    await paused.unpause()

    for sentinel in before["sentinel"]:
        view = await engine.redis.sentinel_view(endpoint(sentinel, password), MASTER_NAME)
        assert view["primary"] == f"{second['address']}:{second['port']}", view  # no election of the unsynced node
    assert (await returning.info("replication"))["role"] == "slave"
    await eventually(lambda: redundant(engine, app_name, addon), timeout=60)
    assert (await returning.config_get("replica-priority"))["replica-priority"] == "100"
    await returning.aclose()
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []
