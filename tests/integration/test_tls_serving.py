"""An addon made before TLS was served here (its events carry no TLS port) starts serving TLS
beside plaintext, live, when the scheduler finds it: no restart, plaintext connections stay, its
rediss:// URL is published, it survives a kill of the node, and force TLS then works."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as redis

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.errors import TlsNotAvailable
from domain.operation import Operation
from domain.placement import free_port, place
from engine import build
from tests.integration.conftest import remove_everything_of, settings_for
from tests.integration.test_force_tls import answers
from tests.integration.test_settings import change, eventually_ping, kill_and_start


async def an_addon_made_before_tls(engine, app: str) -> str:
    """Recorded as the engine recorded addons before nodes served TLS: no TLS port placed."""
    plan = engine.plans.provisionable("redis-sandbox")  # no backups: the scheduler's ticks start none
    where = place(plan.memory_mib, [h.as_domain() for h in engine.settings.hosts], engine.inventory.tenants(),
                  await engine.runtime.ports_in_use())
    operation = Operation(kind="provision", addon=f"{app}-0001", app=app)
    node = f"redis-addons-{app}-0001-{operation.id.hex[:8]}"
    addon = Addon(name=f"{app}-0001", app=app, plan=plan.id, memory_mib=plan.memory_mib,
                  redis_version=engine.versions.default.version, host=where.host, address=where.address,
                  port=where.port, container=node, volume=f"{node}-data", operation_id=operation.id,
                  settings=DEFAULT_SETTINGS)
    await engine.events.save(addon, operation)
    engine.coordinator.submit(operation.id)
    assert (await engine.wait_for_operation(str(operation.id), timeout=90))["status"] == "succeeded"
    return addon.name


async def test_an_addon_made_before_tls_starts_serving_it_live(engine, app_name, tmp_path):
    addon = await an_addon_made_before_tls(engine, app_name)
    env = await engine.environment(app_name)
    assert set(env) == {"REDIS_URL", "SCALINGO_REDIS_URL"}
    with pytest.raises(TlsNotAvailable, match="serves no TLS port yet"):
        await engine.database.change(app_name, addon, "force-tls", True)
    already_open = redis.from_url(env["REDIS_URL"], decode_responses=True)
    await already_open.set("k", "v")
    current = await engine.events.get(Addon.id_for(addon))
    container = await engine.runtime.client(current.host).containers.get(current.container)
    started_at = (await container.show())["State"]["StartedAt"]

    assert (await engine.scheduler.tick())["serving_tls"] == [addon]
    [operation] = [o for o in await engine.operations(addon) if o["kind"] == "serve_tls"]
    assert (await engine.wait_for_operation(operation["id"]))["status"] == "succeeded"

    after = await engine.environment(app_name)
    assert after["REDIS_URL"] == env["REDIS_URL"] and after["REDIS_TLS_URL"].startswith("rediss://")
    ca = tmp_path / "ca.pem"
    ca.write_text(engine.certificates.certificate_pem)
    assert await answers(after["REDIS_TLS_URL"], ssl_ca_certs=str(ca))
    assert await already_open.get("k") == "v"  # plaintext went on, on the same connection
    await already_open.aclose()
    assert (await container.show())["State"]["StartedAt"] == started_at  # no restart
    assert (await engine.scheduler.tick())["serving_tls"] == []  # once is enough

    await kill_and_start(engine, app_name, addon)  # its redis.conf serves TLS too
    tls = redis.from_url(after["REDIS_TLS_URL"], ssl_ca_certs=str(ca), decode_responses=True)
    await eventually_ping(tls)
    assert await tls.ping()
    await tls.aclose()
    await change(engine, app_name, addon, "force-tls")
    assert not await answers(env["REDIS_URL"])


async def test_a_refused_tls_port_leaves_the_node_as_it_was_and_is_not_retried_at_every_tick(home, app_name):
    """A real refusal: something outside Docker listens on the port the node would serve TLS on."""
    try:
        async with build(settings_for(home, step_deadline_s=3)) as engine:
            addon = await an_addon_made_before_tls(engine, app_name)
            current = await engine.events.get(Addon.id_for(addon))
            host = next(h.as_domain() for h in engine.settings.hosts if h.name == current.host)
            taken = free_port(host, engine.inventory.tenants(), await engine.runtime.ports_in_use())
            with socket.socket() as squatter:
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                squatter.bind((current.address, taken))
                squatter.listen()
                assert (await engine.scheduler.tick())["serving_tls"] == [addon]
                [operation] = [o for o in await engine.operations(addon) if o["kind"] == "serve_tls"]
                finished = await engine.wait_for_operation(operation["id"], timeout=30)

            assert finished["status"] == "failed" and "refused the configuration" in finished["error"], finished
            assert set(await engine.environment(app_name)) == {"REDIS_URL", "SCALINGO_REDIS_URL"}
            row = await engine.addon(app_name, addon)
            assert row["tls_port"] is None and "Unable to listen" in row["failure"]
            assert not (await engine.events.get(Addon.id_for(addon))).is_busy
            assert (await engine.scheduler.tick())["serving_tls"] == []  # tried again hours later, not now
            await still_plaintext_only_after_a_restart(engine, app_name, addon, taken)
    finally:
        await remove_everything_of(app_name)


async def test_a_node_down_during_the_change_comes_back_without_tls_no_event_records(home, app_name):
    try:
        async with build(settings_for(home, step_deadline_s=3)) as engine:
            addon = await an_addon_made_before_tls(engine, app_name)
            current = await engine.events.get(Addon.id_for(addon))
            await engine.runtime.stop_node(current.host, current.container, 10)

            assert (await engine.scheduler.tick())["serving_tls"] == [addon]
            [operation] = [o for o in await engine.operations(addon) if o["kind"] == "serve_tls"]
            finished = await engine.wait_for_operation(operation["id"], timeout=30)

            assert finished["status"] == "failed", finished
            assert not (await engine.events.get(Addon.id_for(addon))).is_busy  # compensated, not stuck
            await engine.runtime.start_node(current.host, current.container)
            await still_plaintext_only_after_a_restart(engine, app_name, addon, None)
    finally:
        await remove_everything_of(app_name)


async def still_plaintext_only_after_a_restart(engine, app: str, addon: str, tls_port: int | None) -> None:
    """Its redis.conf is as before: after a kill and a start it serves plaintext, and no TLS port."""
    await kill_and_start(engine, app, addon)
    client = redis.from_url((await engine.environment(app))["REDIS_URL"])
    await eventually_ping(client)
    tls_ports = (await client.config_get("tls-port"))["tls-port"]
    await client.aclose()
    assert tls_ports == "0", f"the node serves TLS on {tls_ports} (tried {tls_port})"
