"""Force TLS end to end on a Business addon (reference, "Force TLS Connections"), on one real
cluster (Docker, Redis, Sentinel, HAProxy) and real clients: `redis-cli --tls --cacert` with the CA
from `tls-ca` reaches the entry; no data node or Sentinel answers plaintext (they serve TLS only,
replicate and watch over TLS); forced, the entry refuses plaintext and the app is restarted on the
rediss:// URL; the primary stopped, the Sentinels fail over over TLS and the entry still answers
over TLS only, the new primary with its replica in sync over TLS; every node's certificate renewed,
TLS goes on; turned off, plaintext works again."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import redis.asyncio as redis

from domain.cluster_config import MASTER_NAME
from engine.ports import Endpoint
from tests.integration.business import business_addon, container, eventually, nodes_by_role, primary_of, watcher_round

REDIS_CLI = shutil.which("redis-cli")


async def answers(url: str, **tls) -> bool:
    """A fresh connection answers PING (a refused or unverified one does not)."""
    client = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, **tls)
    try:
        return await client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        await client.aclose()


def cli_over_tls(url: str, ca: str, *command: str) -> str:
    """`redis-cli --tls --cacert` as a user runs it, the password in REDISCLI_AUTH (never in argv)."""
    parts = urlsplit(url)
    done = subprocess.run([REDIS_CLI, "--tls", "--cacert", ca, "-h", parts.hostname, "-p", str(parts.port),
                           "--user", "default", "--no-auth-warning", *command],
                          env={"REDISCLI_AUTH": parts.password}, capture_output=True, text=True, timeout=10)
    return done.stdout.strip() or done.stderr.strip()


def plaintext_url(node: dict, password: str) -> str:
    return f"redis://default:{password}@{node['address']}:{node['port']}"


async def test_force_tls_on_a_business_addon_end_to_end(engine, app_name, tmp_path):
    ca = tmp_path / "ca.pem"
    addon = await business_addon(engine, app_name)
    ca.write_text(await engine.database.tls_ca(app_name, addon))
    env = await engine.environment(app_name)
    password = urlsplit(env["REDIS_URL"]).password
    tls = {"ssl_ca_certs": str(ca)}
    nodes = await nodes_by_role(engine, app_name, addon)
    inside = nodes["data"] + nodes["sentinel"]

    # TLS beside plaintext at the entry; the certificate the entry passes through names its address.
    assert env["REDIS_TLS_URL"].startswith("rediss://") and env["REDIS_URL"].startswith("redis://")
    assert await answers(env["REDIS_URL"])
    assert await answers(env["REDIS_TLS_URL"], ssl_check_hostname=True, **tls)
    if REDIS_CLI:
        assert cli_over_tls(env["REDIS_TLS_URL"], str(ca), "SET", "before", "1") == "OK"
    for node in inside:  # no plaintext path into the cluster
        assert not await answers(plaintext_url(node, password)), node["container"]

    forced = await engine.database.change(app_name, addon, "force-tls", True)
    operation = await engine.wait_for_operation(forced["operation_id"], timeout=60)
    assert operation["status"] == "succeeded", operation
    env = await engine.environment(app_name)
    assert env["REDIS_URL"] == env["REDIS_TLS_URL"]
    entry_plaintext = plaintext_url({"address": urlsplit(env["REDIS_URL"]).hostname,
                                     "port": (await engine.addon(app_name, addon))["port"]}, password)
    assert not await answers(entry_plaintext)
    if REDIS_CLI:
        assert cli_over_tls(env["REDIS_URL"], str(ca), "GET", "before") == "1"
    assert await answers(env["REDIS_URL"], **tls)

    # The primary stopped: the Sentinels, over TLS, elect the replica; the entry follows, TLS only.
    old = primary_of(nodes)
    await (await container(engine, old)).stop()

    async def failed_over() -> bool:
        await watcher_round(engine)
        now = await nodes_by_role(engine, app_name, addon)
        return primary_of(now)["id"] != old["id"] and await answers(env["REDIS_URL"], **tls)

    await eventually(failed_over, timeout=60, every=0.5)
    client = redis.from_url(env["REDIS_URL"], decode_responses=True, **tls)
    assert await client.get("before") == "1" and await client.set("after", "2")
    await client.aclose()
    assert not await answers(entry_plaintext)
    sentinel = nodes["sentinel"][0]
    over_tls = redis.Redis(host=sentinel["address"], port=sentinel["port"], ssl=True, ssl_ca_certs=str(ca),
                           password=engine.secrets.password_for(f"{addon}-sentinels"), decode_responses=True)
    new = primary_of(await nodes_by_role(engine, app_name, addon))
    assert await over_tls.sentinel_get_master_addr_by_name(MASTER_NAME) == (new["address"], new["port"])
    await over_tls.aclose()

    # The old primary started again comes back a replica of the new one, in sync over TLS.
    await (await container(engine, old)).start()

    async def replica_in_sync() -> bool:
        await watcher_round(engine)
        primary = redis.Redis(host=new["address"], port=new["port"], ssl=True, ssl_ca_certs=str(ca),
                              username="default", password=password, decode_responses=True)
        try:
            info = await primary.info("replication")
        finally:
            await primary.aclose()
        return info.get("connected_slaves") == 1 and info["slave0"]["state"] == "online"

    await eventually(replica_in_sync, timeout=60, every=0.5)
    for node in inside:
        assert not await answers(plaintext_url(node, password)), node["container"]

    # Every node's certificate renewed (as 30 days before it expires): through the entry, the primary
    # presents a new one, verified with the CA; the Sentinels, restarted on theirs, answer over TLS.
    shown = (await engine.addon(app_name, addon))
    at_entry = Endpoint(shown["address"], shown["tls_port"], password, tls=True)
    had = await engine.redis.presented_certificate(at_entry)
    assert await engine.certificate_renewals.renew_due(now=datetime.now(timezone.utc) + timedelta(days=810),
                                                       force_check=True) == [addon]
    [renewal] = [o for o in await engine.operations(addon) if o["kind"] == "renew_certificate"]
    assert (await engine.wait_for_operation(renewal["id"], timeout=120))["status"] == "succeeded"
    assert (await engine.redis.presented_certificate(at_entry)).sha256 != had.sha256
    assert await answers(env["REDIS_URL"], ssl_check_hostname=True, **tls)
    for sentinel in nodes["sentinel"]:
        assert await answers(f"rediss://:{engine.secrets.password_for(f'{addon}-sentinels')}@{sentinel['address']}:"
                             f"{sentinel['port']}", **tls), sentinel["container"]

    unforced = await engine.database.change(app_name, addon, "force-tls", False)
    operation = await engine.wait_for_operation(unforced["operation_id"], timeout=60)
    assert operation["status"] == "succeeded", operation
    env = await engine.environment(app_name)
    assert env["REDIS_URL"].startswith("redis://") and await answers(env["REDIS_URL"])
    assert await answers(env["REDIS_TLS_URL"], **tls)
