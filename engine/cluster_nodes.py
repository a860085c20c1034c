"""The containers of a Business cluster's nodes: data nodes in replication, Sentinels and HAProxy,
from the configuration in domain/cluster_config.py and the images of domain/catalogs."""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import Component, VersionCatalog
from domain.cluster_config import TLS_SUBDIR, Address, haproxy_cfg, replication_lines, sentinel_conf
from domain.redis_config import TLS_FILES, container_memory_bytes, redis_conf, tls_only
from engine.nodes import CONFIG_DIR, node_labels
from engine.ports import Certificates, Endpoint, NodeSpec


def address(node: dict) -> Address:
    return Address(node["address"], node["port"])


def serves_tls_only(node: dict) -> bool:
    """A node of a cluster made to serve TLS (engine/cluster_forming.py): its one port speaks TLS."""
    return tls_only(node["port"], node.get("tls_port"))


def entry_endpoint(addon: Addon, password: str) -> Endpoint:
    """The entry as the engine reaches it: over TLS where it serves TLS (its plaintext port may be closed)."""
    if addon.tls_port:
        return Endpoint(addon.address, addon.tls_port, password, tls=True)
    return Endpoint(addon.address, addon.port, password)


def certificate_files(certificates: Certificates | None, node: dict, addon: Addon) -> dict[str, str]:
    """A node's certificate, its key and the CA, in the `tls` directory beside its configuration. A
    data node's certificate also names the entry address: the entry passes TLS through to it, so the
    app verifies it there. None without `certificates` (a file rewritten, the certificate kept)."""
    if certificates is None or not serves_tls_only(node):
        return {}
    also_at = (addon.address,) if node["role"] == "data" else ()
    certificate, key = certificates.issue_server_certificate(node["address"], (addon.name,), also_at=also_at)
    return {f"{TLS_SUBDIR}/{TLS_FILES['cert']}": certificate, f"{TLS_SUBDIR}/{TLS_FILES['key']}": key,
            f"{TLS_SUBDIR}/{TLS_FILES['ca']}": certificates.certificate_pem}


def data_node_spec(addon: Addon, node: dict, primary: dict | None, operation, password: str, versions: VersionCatalog,
                   min_replicas: int = 1, promotable: bool = True, certificates: Certificates | None = None) -> NodeSpec:
    """A data node: a starter node's configuration, plus replication (a replica of `primary`, or the
    primary itself when None). A node that serves TLS only replicates over TLS too."""
    conf = redis_conf(address=node["address"], port=node["port"], memory_mib=node["memory_mib"], password=password,
                      settings=addon.settings, tls_port=node.get("tls_port"))
    conf += "\n".join(replication_lines(node=address(node), primary=address(primary) if primary else None,
                                        password=password, min_replicas=min_replicas, promotable=promotable)) + "\n"
    return NodeSpec(host=node["host"], container=node["container"], volume=node["volume"],
                    image=versions.get(node["version"]).image,
                    command=["/usr/local/bin/redis-server", f"{CONFIG_DIR}/redis.conf"], config_dir=CONFIG_DIR,
                    files={"redis.conf": conf, **certificate_files(certificates, node, addon)},
                    memory_bytes=container_memory_bytes(node["memory_mib"]), labels=node_labels(addon, node, operation))


def component_spec(addon: Addon, node: dict, component: Component, text: str, operation,
                   more_files: dict[str, str] | None = None) -> NodeSpec:
    """A Sentinel or HAProxy: its own user, its file on its configuration volume."""
    return NodeSpec(host=node["host"], container=node["container"], volume=node["volume"], image=component.image,
                    command=[], config_dir=component.config_dir, files={component.config_file: text, **(more_files or {})},
                    memory_bytes=node["memory_mib"] * 1024 * 1024, labels=node_labels(addon, node, operation),
                    files_owner=(component.uid, component.gid))


def sentinel_spec(addon: Addon, node: dict, primary: dict, component: Component, operation, password: str,
                  sentinel_password: str, certificates: Certificates | None = None) -> NodeSpec:
    text = sentinel_conf(sentinel=address(node), primary=address(primary), password=password,
                         sentinel_password=sentinel_password, tls=serves_tls_only(node))
    return component_spec(addon, node, component, text, operation, certificate_files(certificates, node, addon))


def proxy_spec(addon: Addon, node: dict, entry: Address, data_nodes: list[dict], sentinels: list[dict],
               component: Component, operation, password: str, sentinel_password: str,
               certificates: Certificates | None = None, settings: dict | None = None) -> NodeSpec:
    """Every HAProxy of a cluster binds the same entry address and port (SO_REUSEPORT): the kernel
    spreads new connections over those alive, so one dying leaves the other serving the same URL.
    Where the cluster serves TLS it binds the entry's TLS port too, and, with TLS forced (in
    `settings`, those a change applies, or the addon's), no plaintext port at all."""
    tls_port = addon.tls_port if all(serves_tls_only(n) for n in data_nodes) else None
    force_tls = bool((addon.settings if settings is None else settings).get("force_tls"))
    text = haproxy_cfg(entry=entry, data_nodes={f"d{i}": address(n) for i, n in enumerate(data_nodes)},
                       sentinels=[address(s) for s in sentinels], password=password, sentinel_password=sentinel_password,
                       tls_port=tls_port, force_tls=force_tls)
    ca = {f"{TLS_SUBDIR}/{TLS_FILES['ca']}": certificates.certificate_pem} if tls_port and certificates else {}
    # Labelled with the entry's TLS port too: another installation sharing the host sees it is taken
    # (SO_REUSEPORT would otherwise let its HAProxy bind it beside ours and take half the connections).
    return component_spec(addon, {**node, "tls_port": tls_port}, component, text, operation, ca)
