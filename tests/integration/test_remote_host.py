"""A Docker host over TCP with mutual TLS (`make setup` starts one, in scaleout-hosts.json, listening on its
loopback address only with --tlsverify): real handshakes show who it answers, and an addon lives on it and
moves between it and a host on a unix socket as on any other."""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from adapters.docker.runtime import DockerRuntime
from adapters.tls import CertificateAuthority
from engine import build
from engine.host_tls import HostTLS
from engine.ports import EffectError
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration import data
from tests.integration.conftest import containers_of, docker_of, remove_everything_of, running_addon, settings_for
from tests.integration.test_plan_change import change, url_of

# The TLS host is the second stream's (scaleout-hosts.json), whichever stream runs this file.
SCALEOUT_HOSTS = HOSTS_FILE.with_name("scaleout-hosts.json")


def tls_and_unix_hosts():
    hosts = load_hosts(SCALEOUT_HOSTS)
    return next(h for h in hosts if h.tls), next(h for h in hosts if not h.tls)


def ping(host, context: ssl.SSLContext | None) -> bytes:
    """GET /_ping on the host's TCP address, over TLS with `context` (None: in the clear); its answer."""
    address = urlsplit(host.docker_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as raw:
        connection = context.wrap_socket(raw, server_hostname=address.hostname) if context else raw
        with connection:
            connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
            return answer


def client_context(ca, cert=None, key=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


@pytest.fixture
def foreign(tmp_path):
    """Certificates a stranger holds: a client certificate of another CA, and a node's server certificate of the
    installation's own CA (the CA of the host's files), as each node's container holds one."""
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca")
    installation = CertificateAuthority.load_or_create(SCALEOUT_HOSTS.parent / "tls")
    assert installation.certificate_pem == tls_and_unix_hosts()[0].tls.ca.read_text()  # the CA the host trusts
    made = {}
    for name, (cert, key) in (("other-ca", other.issue_client_certificate("stranger")),
                              ("node", installation.issue_server_certificate("127.0.0.1"))):
        (tmp_path / f"{name}-cert.pem").write_text(cert)
        (tmp_path / f"{name}-key.pem").write_text(key)
        made[name] = (tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem")
    made["other-ca-root"] = tmp_path / "other-ca" / "ca.pem"
    return made


def test_the_host_answers_only_a_client_certificate_of_the_installations_ca(foreign):
    host, _ = tls_and_unix_hosts()
    assert ping(host, client_context(host.tls.ca, host.tls.cert, host.tls.key)).startswith(b"HTTP/1.0 200 OK")
    refusals = {"no certificate": client_context(host.tls.ca),
                "another CA's": client_context(host.tls.ca, *foreign["other-ca"]),
                "the CA's, for a server only": client_context(host.tls.ca, *foreign["node"])}
    for what, context in refusals.items():
        # TLS 1.3: the host checks the certificate after the client's handshake is done, and its refusal comes as an
        # alert, or as the connection closed or reset, whichever the client reads first
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            ping(host, context)
            pytest.fail(f"the host answered a client with {what} certificate")
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # within the handshake: the alert, always
        with pytest.raises(ssl.SSLError, match="BAD_CERTIFICATE"):
            ping(host, context)
    assert b"Client sent an HTTP request to an HTTPS server" in ping(host, None)


async def test_the_engine_reaches_the_host_only_with_its_certificate_and_only_if_the_host_is_the_cas(foreign):
    host, _ = tls_and_unix_hosts()
    docker = docker_of(host)
    try:
        assert (await docker.version())["ApiVersion"]
    finally:
        await docker.close()
    runtime = DockerRuntime((host,))
    try:
        await runtime.check()
    finally:
        await runtime.close()
    wrong_client = replace(host, tls=HostTLS(host.tls.ca, *foreign["other-ca"]))
    wrong_server = replace(host, tls=HostTLS(foreign["other-ca-root"], host.tls.cert, host.tls.key))
    refused = "BAD_CERTIFICATE|Connection reset by peer|EOF occurred"  # as above: how TLS 1.3 may read it
    for stranger, said in ((wrong_client, refused), (wrong_server, "CERTIFICATE_VERIFY_FAILED")):
        runtime = DockerRuntime((stranger,))
        try:
            with pytest.raises(EffectError, match=rf"Docker is unreachable on {host.name} \({host.docker_url}\): .*({said})"):
                await runtime.check()
        finally:
            await runtime.close()


async def test_an_addon_on_the_tls_host_answers_and_moves_to_a_unix_host_and_back(tmp_path, app_name):
    tls_host, unix_host = hosts = tls_and_unix_hosts()
    try:
        async with build(settings_for(tmp_path / "home", hosts=hosts)) as engine:
            addon = await running_addon(engine, app_name)  # on the host listed first: the TLS one
            assert (await engine.addon(app_name, addon))["host"] == tls_host.name
            known = data.expected(2_000)
            await data.write(await url_of(engine, app_name), known)

            assert (await change(engine, app_name, addon, "redis-starter-512"))["status"] == "succeeded"
            assert (await engine.addon(app_name, addon))["host"] == unix_host.name
            assert await data.read(await url_of(engine, app_name), known) == known

            assert (await change(engine, app_name, addon, "redis-starter-256"))["status"] == "succeeded"
            assert (await engine.addon(app_name, addon))["host"] == tls_host.name
            assert await data.read(await url_of(engine, app_name), known) == known
            [node] = await containers_of(addon, hosts)
            assert node["State"]["Running"] and node["Config"]["Labels"]["redis-addons.host"] == tls_host.name
    finally:
        await remove_everything_of(app_name, hosts)
