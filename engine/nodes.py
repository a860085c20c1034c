"""An addon's node as Docker runs it (its container, configuration and certificates) and as the
engine reaches it (its endpoint)."""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import VersionCatalog
from domain.operation import Operation
from domain.redis_config import TLS_DIR, TLS_FILES, container_memory_bytes, redis_conf
from engine.ports import Certificates, Endpoint, NodeSpec

LABEL = "redis-addons"
CONFIG_DIR = "/etc/redis"


def node_labels(addon: Addon, node: dict, operation: Operation | str) -> dict[str, str]:
    """Labels tie a container to its addon and to the operation that made it."""
    labels = {
        f"{LABEL}.addon": addon.name,
        f"{LABEL}.app": addon.app,
        f"{LABEL}.operation": str(getattr(operation, "id", operation)),  # or who else made it: "watcher"
        f"{LABEL}.role": node.get("role", "data"),
        f"{LABEL}.host": node["host"],
        f"{LABEL}.port": str(node["port"]),  # lets any installation sharing the host see the port is taken
    }
    if node.get("tls_port"):
        labels[f"{LABEL}.tls-port"] = str(node["tls_port"])
    return labels


REFUSE_WRITES = "min-replicas-to-write 1"  # a lone node: no replica, so no write is taken


def node_spec(addon: Addon, node: dict, operation: Operation | str, password: str, versions: VersionCatalog,
              certificates: Certificates | None, settings: dict | None = None, refuse_writes: bool = False) -> NodeSpec:
    """The container of `node` (host, address, port, tls_port, container, volume, memory_mib) for this
    addon, with its settings (or `settings`, those a change is applying).

    With `certificates`, a node serving TLS gets a new server certificate; without, only its
    redis.conf is written (a settings change keeps the certificate the server runs with). With
    `refuse_writes`, the node answers reads and refuses every write (NOREPLICAS: a lone node asked
    for a replica) until told otherwise."""
    conf = redis_conf(
        address=node["address"], port=node["port"], tls_port=node.get("tls_port"), memory_mib=node["memory_mib"],
        password=password, settings=addon.settings if settings is None else settings,
    )
    files = {"redis.conf": conf + (f"{REFUSE_WRITES}\n" if refuse_writes else "")}
    if node.get("tls_port") and certificates is not None:
        files.update(tls_files(certificates, node["address"], addon.name))
    return NodeSpec(
        host=node["host"],
        container=node["container"],
        volume=node["volume"],
        image=versions.get(node.get("version") or addon.redis_version).image,  # an upgrade's new node: its own
        command=["/usr/local/bin/redis-server", f"{CONFIG_DIR}/redis.conf"],
        config_dir=CONFIG_DIR,
        files=files,
        memory_bytes=container_memory_bytes(node["memory_mib"]),
        labels=node_labels(addon, node, operation),
    )


def tls_files(certificates: Certificates, address: str, addon_name: str) -> dict[str, str]:
    """A server certificate for the address clients connect to (and the addon's name), its key,
    and the CA (Redis wants one configured even when clients send no certificate)."""
    certificate, key = certificates.issue_server_certificate(address, (addon_name,))
    relative = TLS_DIR.removeprefix(CONFIG_DIR + "/")
    return {f"{relative}/{TLS_FILES['cert']}": certificate, f"{relative}/{TLS_FILES['key']}": key,
            f"{relative}/{TLS_FILES['ca']}": certificates.certificate_pem}


def endpoint(node: dict, password: str) -> Endpoint:
    """The engine speaks TLS to every node that serves it: forcing TLS (plaintext off) then never
    locks the engine out, even halfway through a change."""
    if node.get("tls_port"):
        return Endpoint(node["address"], node["tls_port"], password, tls=True)
    return Endpoint(node["address"], node["port"], password)
