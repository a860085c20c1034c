"""A Business addon's password rotation (engine/credentials_rotation.py) over the in-memory ports. The
fake HAProxy checks the data nodes with the password its file gives (tests/unit/fakes/cluster.py): one
left with the old password routes to no node once the old one is refused, as the real one marks them
down. Every HAProxy checks with the new password at the end, an HAProxy recorded down included; one
that cannot be reached fails the rotation before its publication (undone); one still checking with the
old password after its removal is caught."""

from __future__ import annotations

import pytest

from engine import credentials_rotation
from engine.clusters import cluster_of
from engine.ports import Endpoint
from tests.unit.engine_fakes import APP, finished, started_engine
from tests.unit.fakes.cluster import hashed
from tests.unit.test_saga_cluster_crashes import world  # noqa: F401 - three hosts, a fixture

PLAN = "redis-business-256"
HOOK = "http://127.0.0.1:9999/restart"  # the fake restarter calls nothing
OBSERVED = "2026-01-01T00:00:00+00:00"


@pytest.fixture
async def engine(world, monkeypatch):
    monkeypatch.setattr(credentials_rotation, "CHECKS_SEE_REMOVAL_S", 0.0)  # the fake HAProxy checks at once
    monkeypatch.setattr(credentials_rotation, "ENTRY_WITHIN_S", 0.5)
    engine = await started_engine(world)
    await engine.register_app(APP, "hook", url=HOOK)
    return engine


@pytest.fixture
async def addon(world, engine) -> str:
    started = await engine.add_addon(APP, PLAN)
    assert (await finished(engine, started))["status"] == "succeeded"
    return started["addon"]


async def proxies(world, addon: str) -> list[dict]:
    return [n for n in (await cluster_of(world.events, addon)).live_nodes if n["role"] == "proxy"]


def checks_with(world, proxy: dict) -> str | None:
    """The hash of the password the running HAProxy's checks give (its file as last read), else its file's."""
    server = world.runtime.server(proxy["host"], proxy["container"])
    return server.check_hash if server else None


async def record_down(world, addon: str, proxy: dict) -> None:
    cluster = await cluster_of(world.events, addon)
    cluster.mark_node_down(proxy["id"], reason="its container stopped", observed_at=OBSERVED)
    await world.events.save(cluster)


async def through_entry(world, addon: str, password: str) -> bool:
    name = await world.addon(addon)
    try:
        await world.redis.ping(Endpoint(name.address, name.tls_port, password, tls=True))
        return True
    except Exception:  # noqa: BLE001 - refused or routed nowhere
        return False


async def test_every_haproxy_checks_with_the_new_password(world, engine, addon):
    old = world.secrets.peek(addon)
    operation = await finished(engine, await engine.credentials.rotate(APP, addon))

    assert operation["status"] == "succeeded", operation
    new = world.secrets.peek(addon)
    assert new != old and {checks_with(world, p) for p in await proxies(world, addon)} == {hashed(new)}
    assert await through_entry(world, addon, new) and not await through_entry(world, addon, old)
    assert operation["steps"][3]["detail"].endswith("; the entry still answers with the new one")


async def test_an_haproxy_recorded_down_but_running_again_checks_with_the_new_password(world, engine, addon):
    """Back before the watcher saw it: skipped, it went on checking with the old password, and marked
    every data node down once that was refused."""
    late = (await proxies(world, addon))[0]
    await record_down(world, addon, late)

    operation = await finished(engine, await engine.credentials.rotate(APP, addon))

    assert operation["status"] == "succeeded", operation
    assert checks_with(world, late) == hashed(world.secrets.peek(addon))


async def test_an_haproxy_that_cannot_be_reached_fails_the_rotation_before_its_publication(world, engine, addon):
    old = world.secrets.peek(addon)
    unreachable = (await proxies(world, addon))[0]
    await record_down(world, addon, unreachable)
    world.runtime.fail_for_good("is_running", container=unreachable["container"], times=1)  # at publish only

    operation = await finished(engine, await engine.credentials.rotate(APP, addon))

    assert operation["status"] == "failed" and "publish" in operation["error"], operation
    assert world.secrets.peek(addon) == old and world.secrets.peek_pending(addon) is None
    assert {checks_with(world, p) for p in await proxies(world, addon)} == {hashed(old)}  # the undo reached it
    assert await through_entry(world, addon, old)
    assert world.restarter.restarts == []


async def test_an_haproxy_still_checking_with_the_old_password_after_its_removal_is_caught(world, engine, addon):
    """Its reload never took (the file says the new password, the process checks with the old one): the
    entry answers until the old password is refused, then routes nowhere."""
    for proxy in await proxies(world, addon):
        world.runtime.server(proxy["host"], proxy["container"]).reload = lambda cfg: None

    operation = await finished(engine, await engine.credentials.rotate(APP, addon))

    assert operation["status"] == "failed" and "remove_old" in operation["error"], operation
    assert "an HAProxy still checks the data nodes with it" in operation["error"], operation
    assert not await through_entry(world, addon, world.secrets.peek(addon))  # what was caught: it routes nowhere


async def test_the_sentinels_take_the_new_password_one_at_a_time(world, engine, addon):
    """SENTINEL SET auth-pass closes a Sentinel's links to the nodes (Redis 7.0.15): the next one is set
    only once the one before reaches the primary again, so no two could see it down together."""
    operation = await finished(engine, await engine.credentials.rotate(APP, addon))

    assert operation["status"] == "succeeded", operation
    asked = [(call, args["endpoint"]) for call, args in world.redis.calls if call in ("sentinel_auth", "sentinel_reaches")]
    sentinels = list(dict.fromkeys(endpoint for call, endpoint in asked if call == "sentinel_auth"))
    assert len(sentinels) == 3
    # The fake's links come back at the third ask.
    assert asked == [step for s in sentinels for step in [("sentinel_auth", s)] + [("sentinel_reaches", s)] * 3]
