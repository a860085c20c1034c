"""TLS on a Business addon, over the in-memory ports: its data nodes and Sentinels serve TLS only
from provisioning (replication and the Sentinels over TLS, HAProxy checking them over TLS), its
entry serves plaintext and TLS; forcing TLS leaves the entry TLS only, with the app restarted on its
rediss:// URL first (and, turned off, last); a failure binds the entry as before; a crash at any
step boundary, or at any call to a port, and a restart finish the change."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.cluster_config import Address, haproxy_cfg, sentinel_conf
from domain.redis_config import redis_conf
from domain.errors import TlsNotAvailable
from engine.clusters import cluster_of
from engine.ports import Endpoint, TransientError
from tests.unit.engine_fakes import APP, caught_up, restarted, settled
from tests.unit import test_saga_cluster_crashes as cluster_crashes
from tests.unit.fakes import Crash
from tests.unit.on_three_hosts import crash_at_every_call

PLAN = cluster_crashes.PLAN
world, engine = cluster_crashes.world, cluster_crashes.engine


async def business_addon(engine) -> str:
    started = await engine.add_addon(APP, PLAN)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    return started["addon"]


async def force_tls(engine, addon: str, enabled: bool = True) -> dict:
    requested = await engine.database.change(APP, addon, "force-tls", enabled)
    return await engine.wait_for_operation(requested["operation_id"], timeout=10)


async def answers(world, endpoint: Endpoint) -> bool:
    try:
        await world.redis.ping(endpoint)
        return True
    except TransientError:
        return False


async def entry(world, name: str) -> tuple[Endpoint, Endpoint]:
    """The entry over plaintext, and over TLS."""
    addon, password = await world.addon(name), world.secrets.peek(name)
    return (Endpoint(addon.address, addon.port, password), Endpoint(addon.address, addon.tls_port, password, tls=True))


def proxy_files(world, cluster) -> list[str]:
    return [world.runtime.container(p["host"], p["container"]).config["haproxy.cfg"]
            for p in cluster.live_nodes if p["role"] == "proxy"]


# -- the configuration --------------------------------------------------------------------------------------

def test_a_node_serving_tls_only_has_no_plaintext_port_and_replicates_over_tls():
    conf = redis_conf(address="127.0.1.1", port=30000, tls_port=30000, memory_mib=256, password="p", settings={})
    assert "\nport 0\n" in conf and "tls-port 30000" in conf and "tls-replication yes" in conf
    beside = redis_conf(address="127.0.1.1", port=30000, tls_port=30001, memory_mib=256, password="p", settings={})
    assert "\nport 30000\n" in beside and "tls-replication" not in beside  # a starter node: TLS beside plaintext


def test_a_sentinel_serving_tls_speaks_tls_to_the_nodes_and_other_sentinels():
    conf = sentinel_conf(sentinel=Address("127.0.2.1", 30001), primary=Address("127.0.1.1", 30000), password="p",
                         sentinel_password="s", tls=True)
    assert "\nport 0\n" in conf and "tls-port 30001" in conf and "tls-replication yes" in conf
    assert "tls-cert-file /etc/sentinel/tls/server.crt" in conf
    assert "\nport 30001\n" in sentinel_conf(sentinel=Address("127.0.2.1", 30001), primary=Address("127.0.1.1", 30000),
                                             password="p", sentinel_password="s")


def test_the_entry_passes_tls_through_checks_over_tls_and_binds_no_plaintext_once_forced():
    kwargs = dict(entry=Address("127.0.1.1", 30005), data_nodes={"d0": Address("127.0.1.1", 30000)},
                  sentinels=[Address("127.0.2.1", 30001)], password="p", sentinel_password="s", tls_port=30006)
    served = haproxy_cfg(**kwargs)
    assert "frontend redis\n    bind 127.0.1.1:30005" in served and "frontend redis_tls\n    bind 127.0.1.1:30006" in served
    assert "server d0 127.0.1.1:30000 ssl verify required ca-file /etc/haproxy/tls/ca.crt check" in served
    assert "server sentinel0 127.0.2.1:30001 ssl verify required ca-file /etc/haproxy/tls/ca.crt check" in served
    assert "backend tls_d0\n    server d0 127.0.1.1:30000 track data_d0/d0" in served  # no `ssl`: passed through
    forced = haproxy_cfg(**kwargs, force_tls=True)
    assert "frontend redis\n" not in forced and "bind 127.0.1.1:30005" not in forced and "frontend redis_tls" in forced
    old = haproxy_cfg(**{**kwargs, "tls_port": None})
    assert "ssl" not in old and "redis_tls" not in old  # a cluster made before TLS: as it was


# -- provisioning -------------------------------------------------------------------------------------------

async def test_a_business_addon_serves_tls_inside_its_cluster_and_at_its_entry(world, engine):
    name = await business_addon(engine)
    addon, cluster = await world.addon(name), await cluster_of(world.events, name)
    plaintext, tls = await entry(world, name)

    assert addon.tls_port not in (None, addon.port) and cluster.entry["tls_port"] == addon.tls_port
    assert await answers(world, plaintext) and await answers(world, tls)
    inside = [n for n in cluster.live_nodes if n["role"] in ("data", "sentinel")]
    assert len(inside) == 5 and all(n["tls_port"] == n["port"] for n in inside)
    for node in inside:  # no plaintext path into the cluster
        assert not await answers(world, Endpoint(node["address"], node["port"], world.secrets.peek(name)))
    issued = sorted((c["address"], c["also_at"]) for c in world.certificates.calls_to("issue_server_certificate"))
    # a data node's certificate names the entry address too: the entry passes TLS through to it
    assert issued == sorted((n["address"], (addon.address,) if n["role"] == "data" else ()) for n in inside)
    for cfg in proxy_files(world, cluster):
        assert f"bind {addon.address}:{addon.tls_port}" in cfg and "ca-file" in cfg
    shown = await engine.database.show(APP, name)
    assert shown["tls_available"] and shown["tls_unavailable"] is None
    assert await engine.database.tls_ca(APP, name) == world.certificates.certificate_pem


async def test_a_business_addon_of_a_build_without_tls_serves_plaintext_and_refuses_force_tls(world, engine):
    started = await engine.add_addon(APP, PLAN, version="6.2.14")
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    name = started["addon"]
    addon, cluster = await world.addon(name), await cluster_of(world.events, name)
    assert addon.tls_port is None and all(n["tls_port"] is None for n in cluster.live_nodes)
    assert await answers(world, Endpoint(addon.address, addon.port, world.secrets.peek(name)))
    with pytest.raises(Exception, match="built without TLS"):
        await engine.database.change(APP, name, "force-tls", True)


# -- forcing TLS --------------------------------------------------------------------------------------------

async def test_forcing_tls_restarts_the_app_on_rediss_then_closes_the_plaintext_entry_and_back(world, engine):
    name = await business_addon(engine)
    plaintext, tls = await entry(world, name)

    on = await force_tls(engine, name)

    assert on["status"] == "succeeded", on
    assert [s["name"] for s in on["steps"]] == ["restart_app", "apply", "verify", "publish"]
    assert (await world.addon(name)).settings["force_tls"] is True
    assert world.restarter.restarts[-1][2]["REDIS_URL"] == tls_url(world, await world.addon(name))
    assert not await answers(world, plaintext) and await answers(world, tls)
    cluster = await cluster_of(world.events, name)
    assert all("frontend redis\n" not in cfg for cfg in proxy_files(world, cluster))
    assert {r.loads for r in proxies(world, cluster)} == {2}  # each HAProxy reloaded once

    off = await force_tls(engine, name, False)

    assert off["status"] == "succeeded", off
    assert [s["name"] for s in off["steps"]] == ["apply", "verify", "publish", "restart_app"]
    assert world.restarter.restarts[-1][2]["REDIS_URL"].startswith("redis://")
    assert await answers(world, plaintext) and await answers(world, tls)


async def test_a_failure_binds_the_entry_as_before_and_gives_the_app_its_url_back(world, engine):
    name = await business_addon(engine)
    plaintext, tls = await entry(world, name)
    world.redis.fail_for_good("ping", port=tls.port)  # verify fails: the entry does not answer over TLS

    failed = await force_tls(engine, name)

    assert failed["status"] == "failed" and failed["error"].startswith("verify: "), failed
    world.redis.heal()
    assert (await world.addon(name)).settings["force_tls"] is False
    assert await answers(world, plaintext) and await answers(world, tls)
    assert world.restarter.restarts[-1][2]["REDIS_URL"].startswith("redis://")


def tls_url(world, addon) -> str:
    from domain.redis_config import redis_url
    return redis_url(password=world.secrets.peek(addon.name), address=addon.address, port=addon.tls_port, tls=True)


def proxies(world, cluster) -> list:
    return [world.runtime.server(p["host"], p["container"]) for p in cluster.live_nodes if p["role"] == "proxy"]


async def tls_forced_on_the_entry(world, engine, name: str) -> None:
    await caught_up(engine)
    addon = await world.addon(name)
    assert addon.settings["force_tls"] is True and addon.operation_id is None
    plaintext, tls = await entry(world, name)
    assert not await answers(world, plaintext) and await answers(world, tls)
    assert world.restarter.restarts[-1][2]["REDIS_URL"].startswith("rediss://")


# -- crashes ------------------------------------------------------------------------------------------------

BOUNDARIES = [("Operation.Started", False)] + [(f"Operation.StepSucceeded({step})", before)
                                               for step in ("restart_app", "apply", "verify", "publish")
                                               for before in (True, False)]


@pytest.mark.parametrize("event, before", BOUNDARIES,
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in BOUNDARIES])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_forcing_tls(world, engine, event, before):
    name = await business_addon(engine)
    world.events.crash_on(event, before=before)
    await forcing_until_crash(engine, name)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await tls_forced_on_the_entry(world, engine, name)


async def test_a_crash_at_any_call_to_a_port_and_a_restart_finish_forcing_tls():
    async def forced(world, engine, name: str) -> None:
        if (await world.addon(name)).operation_id is None and not await tls_operations(engine, name):
            return  # the crash came in the command, before the change was recorded
        await tls_forced_on_the_entry(world, engine, name)

    crashed = await crash_at_every_call(lambda world, engine: business_addon(engine), forcing_until_crash, forced)
    assert len(crashed) >= 5, crashed


async def forcing_until_crash(engine, name: str) -> None:
    try:
        requested = await engine.database.change(APP, name, "force-tls", True)
    except Crash:
        return
    await engine.coordinator.wait(UUID(requested["operation_id"]), timeout=10)


async def tls_operations(engine, name: str) -> list[dict]:
    return [o for o in await engine.operations(name) if o["kind"] == "enable_force_tls"]


# -- nodes that join later ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["data", "sentinel", "proxy"])
async def test_a_replacement_serves_tls_as_the_node_it_replaces_with_its_certificate(world, engine, role):
    name = await business_addon(engine)
    await force_tls(engine, name)
    before = await cluster_of(world.events, name)
    lost = next(n for n in before.live_nodes if n["role"] == role and n["id"] != before.primary)
    del world.runtime.hosts[lost["host"]].containers[lost["container"]]  # behind the engine's back
    await caught_up(engine)
    world.certificates.calls.clear()

    looked = await engine.watcher.healer.look()
    assert [d for d in looked if d.get("replacing")], looked
    [replacing] = [d["replacing"] for d in looked if d.get("replacing")]
    assert (await engine.wait_for_operation(replacing, timeout=10))["status"] == "succeeded"

    cluster = await cluster_of(world.events, name)
    [new] = [n for n in cluster.live_nodes if n["id"] not in before.nodes]
    files = world.runtime.container(new["host"], new["container"]).config
    if role == "proxy":  # it binds the entry's TLS port only (TLS is forced), with the CA to check the nodes
        assert "frontend redis\n" not in files["haproxy.cfg"] and "tls/ca.crt" in files
        assert new["tls_port"] is None
    else:
        assert new["tls_port"] == new["port"] and "tls/server.crt" in files and "tls/server.key" in files
        also_at = (cluster.entry["address"],) if role == "data" else ()
        assert [(c["address"], c["also_at"]) for c in world.certificates.calls_to("issue_server_certificate")] == [
            (new["address"], also_at)]
    plaintext, tls = await entry(world, name)
    assert not await answers(world, plaintext) and await answers(world, tls)


# -- certificates renewed -----------------------------------------------------------------------------------

async def test_every_node_of_a_business_addon_gets_a_new_certificate(world, engine):
    from datetime import datetime, timedelta, timezone
    name = await business_addon(engine)
    await force_tls(engine, name)
    cluster = await cluster_of(world.events, name)
    inside = [n for n in cluster.live_nodes if n["role"] in ("data", "sentinel")]
    had = {n["id"]: world.runtime.container(n["host"], n["container"]).config["tls/server.crt"] for n in inside}
    world.runtime.effects.clear()

    started = await engine.certificate_renewals.renew_due(now=datetime.now(timezone.utc) + timedelta(days=810),
                                                          force_check=True)

    assert started == [name]
    [renewal] = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
    assert (await engine.wait_for_operation(renewal["id"], timeout=10))["status"] == "succeeded"
    for node in inside:
        container = world.runtime.container(node["host"], node["container"])
        assert container.config["tls/server.crt"] != had[node["id"]], node["container"]
        if node["role"] == "data":  # loaded live; its file as it was
            assert world.runtime.server(node["host"], node["container"]).certificate_reloads == 1
            assert "tls-replication yes" in container.config["redis.conf"]
        else:  # a Sentinel cannot load it live: restarted on it
            assert ("started", node["host"], node["container"]) in world.runtime.effects
    assert not [e for e in world.runtime.effects if e[0] == "started" and e[2] not in
                {n["container"] for n in inside if n["role"] == "sentinel"}]  # nothing else restarted
    plaintext, tls = await entry(world, name)
    assert await answers(world, tls) and not await answers(world, plaintext)


async def test_a_cluster_whose_nodes_serve_no_tls_refuses_force_tls_saying_why(world, engine):
    name = await business_addon(engine)
    cluster = await cluster_of(world.events, name)
    for node in [n for n in cluster.live_nodes if n["role"] == "data"]:  # as a cluster made before TLS records them
        cluster.change_node_ports(node["id"], None)
    await world.events.save(cluster)

    with pytest.raises(TlsNotAvailable, match="runs on a cluster whose nodes serve no TLS"):
        await engine.database.change(APP, name, "force-tls", True)
    assert (await engine.database.show(APP, name))["tls_unavailable"].startswith("the addon runs on a cluster")
    assert [o["kind"] for o in await engine.operations(name)] == ["provision_cluster"]  # nothing started


async def test_a_plan_change_keeps_tls_at_the_entry_and_its_new_data_nodes_serve_tls_only(world, engine):
    name = await business_addon(engine)
    await force_tls(engine, name)
    had = await world.addon(name)

    for plan in ("redis-business-512", "redis-business-256"):  # twice: the second starts from the first's nodes
        requested = await engine.change_plan(APP, name, plan)
        assert (await engine.wait_for_operation(requested["operation_id"], timeout=10))["status"] == "succeeded"

    addon, cluster = await world.addon(name), await cluster_of(world.events, name)
    assert (addon.port, addon.tls_port) == (had.port, had.tls_port) and addon.settings["force_tls"] is True
    for node in [n for n in cluster.live_nodes if n["role"] == "data"]:
        assert node["tls_port"] == node["port"] and "tls/server.crt" in world.runtime.container(
            node["host"], node["container"]).config
    plaintext, tls = await entry(world, name)
    assert not await answers(world, plaintext) and await answers(world, tls)
    assert all("frontend redis\n" not in cfg and "frontend redis_tls" in cfg for cfg in proxy_files(world, cluster))


RENEWAL_BOUNDARIES = [("Operation.Started", False)] + [(f"Operation.StepSucceeded({step})", before)
                                                       for step in ("check", "renew", "verify", "record")
                                                       for before in (True, False)]


@pytest.mark.parametrize("event, before", RENEWAL_BOUNDARIES,
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}"
                              for e, b in RENEWAL_BOUNDARIES])
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_renewing_every_nodes_certificate(world, engine, event,
                                                                                                before):
    from datetime import datetime, timedelta, timezone
    name = await business_addon(engine)
    cluster = await cluster_of(world.events, name)
    inside = [n for n in cluster.live_nodes if n["role"] in ("data", "sentinel")]
    had = {n["id"]: world.runtime.container(n["host"], n["container"]).config["tls/server.crt"] for n in inside}
    world.events.crash_on(event, before=before)
    try:
        await engine.certificate_renewals.renew_due(now=datetime.now(timezone.utc) + timedelta(days=810),
                                                    force_check=True)
        [renewal] = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
        await engine.coordinator.wait(UUID(renewal["id"]), timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await caught_up(engine)

    [renewal] = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
    assert renewal["status"] == "succeeded", renewal
    assert (await world.addon(name)).operation_id is None
    for node in inside:
        assert world.runtime.container(node["host"], node["container"]).config["tls/server.crt"] != had[node["id"]]
        assert world.runtime.server(node["host"], node["container"]) is not None  # running
    assert await answers(world, (await entry(world, name))[1])


async def test_an_haproxy_down_during_the_change_gets_the_new_binds_for_when_it_comes_back(world, engine):
    name = await business_addon(engine)
    cluster = await cluster_of(world.events, name)
    down = [n for n in cluster.live_nodes if n["role"] == "proxy"][1]
    await world.runtime.stop_node(down["host"], down["container"], 10)
    cluster.mark_node_down(down["id"], "stopped", "2026-01-01T00:00:00+00:00")
    await world.events.save(cluster)

    assert (await force_tls(engine, name))["status"] == "succeeded"

    assert "frontend redis\n" not in world.runtime.container(down["host"], down["container"]).config["haproxy.cfg"]
    assert world.runtime.server(down["host"], down["container"]) is None  # written, not started


async def test_a_crash_at_any_call_to_a_port_and_a_restart_finish_renewing_every_nodes_certificate():
    """Between boundaries too: the engine dies at its Nth call to a port during the renewal, for every N."""
    from datetime import datetime, timedelta, timezone
    later = datetime.now(timezone.utc) + timedelta(days=810)

    async def renewing(engine, name: str) -> None:
        await engine.certificate_renewals.renew_due(now=later, force_check=True)
        for renewal in [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]:
            await engine.coordinator.wait(UUID(renewal["id"]), timeout=10)

    async def renewed(world, engine, name: str) -> None:
        renewals = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
        if not renewals:  # the crash came before the renewal was recorded: the next check starts it
            return
        assert [o["status"] for o in renewals] == ["succeeded"], renewals
        inside = [n for n in (await cluster_of(world.events, name)).live_nodes if n["role"] in ("data", "sentinel")]
        assert all(world.runtime.server(n["host"], n["container"]) is not None for n in inside)  # all running
        assert await answers(world, (await entry(world, name))[1])

    crashed = await crash_at_every_call(lambda world, engine: business_addon(engine), renewing, renewed)
    assert len(crashed) >= 10, crashed
