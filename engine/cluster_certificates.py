"""The TLS server certificates of a Business cluster's nodes, renewed as engine/certificate_renewal.py
renews a single node's: each data node and each Sentinel that serves TLS has its own (HAProxy holds
none: it passes the entry's TLS through to the primary, and checks the nodes with the CA).

A data node loads its new certificate live (`CONFIG SET tls-cert-file …`), as a single node does. A
Sentinel cannot (Sentinel 7.0 knows no `CONFIG`, and `SENTINEL CONFIG SET` takes no tls-* option):
it is restarted on its new files, one Sentinel at a time, each waited for until it answers over TLS
again, so two of three always watch the primary. Only the certificate files are written: a data
node's redis.conf and a Sentinel's file (which Sentinel rewrites with what it learnt) stay as they are.
"""

from __future__ import annotations

from dataclasses import replace

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain.addon import Addon
from domain.catalog import ComponentCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.cluster_config import MASTER_NAME
from domain.redis_config import TLS_DIR, TLS_FILES
from engine.cluster_nodes import certificate_files, component_spec, data_node_spec, serves_tls_only
from engine.cluster_provisioning import sentinel_secret
from engine.nodes import endpoint
from engine.ports import Certificates, Endpoint, RedisAdmin, Runtime, SecretStore, TransientError

SENTINEL_BACK_WITHIN_S = 30.0
SENTINEL_STOP_TIMEOUT_S = 10


def nodes_with_certificates(cluster: Cluster) -> list[dict]:
    """The running nodes of a cluster that serve TLS with a certificate of their own, data nodes first."""
    nodes = [n for n in cluster.live_nodes if n["role"] in ("data", "sentinel") and n["state"] == "running"
             and serves_tls_only(n)]
    return sorted(nodes, key=lambda n: n["role"] != "data")


def node_endpoint(secrets: SecretStore, addon: str, node: dict) -> Endpoint:
    password = secrets.password_for(sentinel_secret(addon) if node["role"] == "sentinel" else addon)
    return endpoint(node, password)


async def renew_node(runtime: Runtime, redis: RedisAdmin, secrets: SecretStore, versions: VersionCatalog,
                     components: ComponentCatalog, certificates: Certificates, addon: Addon, node: dict,
                     operation) -> str:
    """Write a new certificate into the node's container and have the node serve it; returns how."""
    files = certificate_files(certificates, node, addon)
    if node["role"] == "data":
        spec = data_node_spec(addon, node, None, operation, secrets.password_for(addon.name), versions)
        await runtime.create_node(replace(spec, files=files))  # the certificate files only
        await redis.reload_certificate(node_endpoint(secrets, addon.name, node),
                                       f"{TLS_DIR}/{TLS_FILES['cert']}", f"{TLS_DIR}/{TLS_FILES['key']}")
        return f"{node['container']}: loaded live"
    spec = component_spec(addon, node, components.get("sentinel"), "", operation)
    await runtime.create_node(replace(spec, files=files))  # its sentinel.conf is left as Sentinel wrote it
    await runtime.stop_node(node["host"], node["container"], SENTINEL_STOP_TIMEOUT_S)
    await runtime.start_node(node["host"], node["container"])
    async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError),
                                       stop=stop_after_delay(SENTINEL_BACK_WITHIN_S),
                                       wait=wait_exponential(multiplier=0.1, max=1.0), reraise=True):
        with attempt:  # answering again, over TLS, before the next Sentinel goes
            await redis.sentinel_view(node_endpoint(secrets, addon.name, node), MASTER_NAME)
    return f"{node['container']}: restarted on it"
