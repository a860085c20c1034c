"""A node's TLS certificate is renewed before it expires, on a real node, from the scheduler:
loaded live (TLS connections already open stay open, nothing restarts), even when it has already
expired. Clients verifying with the installation's CA keep working."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address

import redis.asyncio as redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.docker.runtime import config_archive
from domain.addon import Addon
from engine.nodes import endpoint
from engine.ports import TransientError
from tests.integration.conftest import running_addon
from tests.integration.test_force_tls import answers
from tests.integration.test_settings import change


def now() -> datetime:
    return datetime.now(timezone.utc)


async def renewal_of(engine, addon: str) -> dict:
    return await engine.wait_for_operation((await last_renewal(engine, addon))["id"], timeout=90)


async def container_of(engine, addon: str):
    current = await engine.events.get(Addon.id_for(addon))
    return await engine.runtime.client(current.host).containers.get(current.container)


async def test_a_certificate_due_is_renewed_live_and_open_tls_connections_stay(engine, app_name, tmp_path):
    # Sandbox plans have no backups: the scheduler ticking two years ahead starts none to hold the addon.
    addon = await running_addon(engine, app_name, plan="redis-sandbox")
    without_tls = await engine.add_addon(app_name, "redis-sandbox", version="6.2.14")
    await engine.wait_for_operation(without_tls["operation_id"])
    ca = tmp_path / "ca.pem"
    ca.write_text(engine.certificates.certificate_pem)
    url = (await engine.environment(app_name))["REDIS_TLS_URL"]
    already_open = redis.from_url(url, ssl_ca_certs=str(ca), decode_responses=True)
    await already_open.set("k", "v")
    before = await presented(engine, addon)
    started_at = (await (await container_of(engine, addon)).show())["State"]["StartedAt"]

    assert await engine.certificate_renewals.renew_due(now(), force_check=True) == []  # 825 days left: not due
    # From the scheduler, at a moment 29 days before it expires (the check's gate is open at first):
    assert (await engine.scheduler.tick(before.not_after - timedelta(days=29)))["renewing"] == [addon]

    renewal = await renewal_of(engine, addon)
    assert renewal["status"] == "succeeded", renewal
    assert [s["name"] for s in renewal["steps"]] == ["check", "renew", "verify", "record"]
    after = await presented(engine, addon)
    assert after.sha256 != before.sha256 and after.not_after >= before.not_after
    assert await already_open.get("k") == "v"  # the open TLS connection was not dropped
    await already_open.aclose()
    assert await answers(url, ssl_ca_certs=str(ca))  # a new one verifies the new certificate
    assert (await (await container_of(engine, addon)).show())["State"]["StartedAt"] == started_at  # no restart
    assert not (await engine.events.get(Addon.id_for(addon))).is_busy  # the addon is free again
    # Still due at that moment, but looked at again only hours later; asked for, it is renewed again.
    assert (await engine.scheduler.tick(before.not_after - timedelta(days=29)))["renewing"] == []
    assert await engine.certificate_renewals.renew_due(before.not_after - timedelta(days=29), force_check=True) == [addon]
    assert (await engine.wait_for_operation((await last_renewal(engine, addon))["id"]))["status"] == "succeeded"


async def test_an_expired_certificate_is_renewed_live_even_without_persistence(engine, app_name, tmp_path):
    addon = await running_addon(engine, app_name)
    await change(engine, app_name, addon, "rdb", enabled=False)  # a restart would lose every key
    ca = tmp_path / "ca.pem"
    ca.write_text(engine.certificates.certificate_pem)
    env = await engine.environment(app_name)
    client = redis.from_url(env["REDIS_URL"])
    await serve_an_expired_certificate(engine, addon)
    await client.set("kept", "through the renewal")
    await client.aclose()
    started_at = (await (await container_of(engine, addon)).show())["State"]["StartedAt"]
    assert not await answers(env["REDIS_TLS_URL"], ssl_ca_certs=str(ca))  # "certificate has expired"

    assert await engine.certificate_renewals.renew_due(now(), force_check=True) == [addon]

    renewal = await renewal_of(engine, addon)
    assert renewal["status"] == "succeeded", renewal
    assert "loaded live (the one it replaces had expired on" in renewal["steps"][1]["detail"]
    assert (await (await container_of(engine, addon)).show())["State"]["StartedAt"] == started_at  # no restart
    client = redis.from_url(env["REDIS_TLS_URL"], ssl_ca_certs=str(ca))
    assert await client.get("kept") == b"through the renewal"
    await client.aclose()


async def presented(engine, addon: str):
    current = await engine.events.get(Addon.id_for(addon))
    return await engine.redis.presented_certificate(endpoint(current.previous_node, ""))


async def last_renewal(engine, addon: str) -> dict:
    return [o for o in await engine.operations(addon) if o["kind"] == "renew_certificate"][-1]


async def serve_an_expired_certificate(engine, addon: str) -> None:
    """The node restarted with a certificate from the installation's CA that expired yesterday."""
    current = await engine.events.get(Addon.id_for(addon))
    ca_key = serialization.load_pem_private_key((engine.settings.tls_dir / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(engine.certificates.certificate_pem.encode())
    key = ec.generate_private_key(ec.SECP256R1())
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, current.address)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now() - timedelta(days=30)).not_valid_after(now() - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address(current.address))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    container = await container_of(engine, addon)
    await container.put_archive("/etc/redis/tls", config_archive({
        "server.crt": expired.public_bytes(serialization.Encoding.PEM).decode(),
        "server.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()}))
    await container.restart(timeout=30)
    for _ in range(100):
        try:
            if (await engine.redis.presented_certificate(endpoint(current.previous_node, ""))).not_after < now():
                return
        except TransientError:  # restarting
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the node does not serve the expired certificate")
