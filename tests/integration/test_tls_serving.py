"""An addon made before TLS was served here (its events carry no TLS port) starts serving TLS
beside plaintext, live, when the scheduler finds it: no restart, plaintext connections stay, its
rediss:// URL is published, it survives a kill of the node, and force TLS then works."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from domain.addon import DEFAULT_SETTINGS, Addon
from domain.errors import TlsNotAvailable
from domain.operation import Operation
from domain.placement import place
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
