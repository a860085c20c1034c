"""A compensation that cannot finish leaves the addon visibly in need of attention: it accepts only
the operation's retry and its removal; the operator's retry finishes it once the cause is gone.
Real Docker engines, a real Redis server, a port really taken."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis.asyncio as redis

from domain.addon import Addon
from domain.errors import AddonNeedsAttention, OperationNotStuck
from tests.integration.conftest import containers_of, running_addon
from tests.integration.test_settings import eventually_ping

pytestmark = pytest.mark.parametrize("engine", ["new-host-cannot-start"], indirect=True)


async def a_plan_change_that_cannot_be_undone(engine, app: str):
    """The new host cannot start the node (its port is taken), and once the old node is stopped its
    own port is taken too: bringing it back fails until that port is given back."""
    addon = await running_addon(engine, app, "redis-sandbox")
    client = redis.from_url((await engine.environment(app))["REDIS_URL"], decode_responses=True)
    await client.set("order:1", "paid")
    await client.aclose()
    old = await engine.events.get(Addon.id_for(addon))
    started = await engine.change_plan(app, addon, "redis-starter-256")
    for _ in range(200):
        steps = {s["name"]: s["status"] for s in (await engine.operation(started["operation_id"]))["steps"]}
        if steps["stop"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((old.address, old.port))
    blocker.listen()
    for _ in range(300):
        if (await engine.operation(started["operation_id"]))["status"] == "needs-attention":
            break
        await asyncio.sleep(0.1)
    return addon, started["operation_id"], blocker


async def test_a_failed_undo_shows_needs_attention_and_the_operators_retry_finishes_it(engine, app_name):
    addon, operation_id, blocker = await a_plan_change_that_cannot_be_undone(engine, app_name)
    try:
        assert (await engine.operation(operation_id))["status"] == "needs-attention"
        row = await engine.addon(app_name, addon)
        assert row["status"] == "needs-attention" and row["failure"]
        with pytest.raises(AddonNeedsAttention, match="operations-retry"):
            await engine.change_plan(app_name, addon, "redis-starter-512")
        with pytest.raises(AddonNeedsAttention):
            await engine.database.change(app_name, addon, "aof", True)
    finally:
        blocker.close()
    await engine.retry_operation(operation_id)
    finished = await engine.wait_for_operation(operation_id, timeout=60)
    assert finished["status"] == "failed"  # undone: back as it was
    row = await engine.addon(app_name, addon)
    assert (row["status"], row["plan"]) == ("running", "redis-sandbox")
    client = redis.from_url((await engine.environment(app_name))["REDIS_URL"], decode_responses=True)
    await eventually_ping(client)
    assert await client.get("order:1") == "paid"
    await client.aclose()
    with pytest.raises(OperationNotStuck):
        await engine.retry_operation(operation_id)


async def test_an_addon_that_needs_attention_can_be_removed_and_nothing_is_left(engine, app_name):
    addon, operation_id, blocker = await a_plan_change_that_cannot_be_undone(engine, app_name)
    try:
        removal = await engine.remove_addon(app_name, addon)
        assert (await engine.wait_for_operation(removal["operation_id"], timeout=60))["status"] == "succeeded"
    finally:
        blocker.close()
    assert (await engine.operation(operation_id))["status"] == "abandoned"
    assert (await engine.addon(app_name, addon))["status"] == "removed"
    assert await containers_of(addon) == []
