"""A client of one Docker host: its unix socket, or tcp:// with mutual TLS.

Over TCP the host is verified against the CA its hosts.json entry names (the certificate must be
for the address connected to), and the engine shows its client certificate, which the host's
dockerd (--tlsverify) requires. Every place that opens a Docker client goes through here, so no
request ever reaches a TCP host in the clear.
"""

from __future__ import annotations

import ssl

import aiodocker

from engine.host_tls import HostTLS, https_url, needs_tls
from engine.settings import DockerHost


def docker_client(host: DockerHost) -> aiodocker.Docker:
    if host.tls is None:
        if needs_tls(host.docker_url):  # load_hosts refuses it; a DockerHost made by hand must not slip through
            raise ValueError(f"{host.name}: {host.docker_url} needs its TLS files: no Docker API over plain TCP")
        return aiodocker.Docker(url=host.docker_url)
    return aiodocker.Docker(url=https_url(host.docker_url), ssl_context=client_context(host.tls))


def client_context(tls: HostTLS) -> ssl.SSLContext:
    """Verifies the host (CA and address, TLS 1.2 at least) and presents the engine's certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context
