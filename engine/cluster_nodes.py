"""The containers of a Business cluster's nodes: data nodes in replication, Sentinels and HAProxy,
from the configuration in domain/cluster_config.py and the images of domain/catalogs."""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import Component, VersionCatalog
from domain.cluster_config import Address, haproxy_cfg, replication_lines, sentinel_conf
from domain.redis_config import container_memory_bytes, redis_conf
from engine.nodes import CONFIG_DIR, node_labels
from engine.ports import NodeSpec


def address(node: dict) -> Address:
    return Address(node["address"], node["port"])


def data_node_spec(addon: Addon, node: dict, primary: dict | None, operation, password: str, versions: VersionCatalog,
                   min_replicas: int = 1, promotable: bool = True) -> NodeSpec:
    """A data node: a starter node's configuration, plus replication (a replica of `primary`, or the
    primary itself when None)."""
    conf = redis_conf(address=node["address"], port=node["port"], memory_mib=node["memory_mib"], password=password,
                      settings=addon.settings)
    conf += "\n".join(replication_lines(node=address(node), primary=address(primary) if primary else None,
                                        password=password, min_replicas=min_replicas, promotable=promotable)) + "\n"
    return NodeSpec(host=node["host"], container=node["container"], volume=node["volume"],
                    image=versions.get(node["version"]).image,
                    command=["/usr/local/bin/redis-server", f"{CONFIG_DIR}/redis.conf"], config_dir=CONFIG_DIR,
                    files={"redis.conf": conf}, memory_bytes=container_memory_bytes(node["memory_mib"]),
                    labels=node_labels(addon, node, operation))


def component_spec(addon: Addon, node: dict, component: Component, text: str, operation) -> NodeSpec:
    """A Sentinel or HAProxy: its own user, its file on its configuration volume, a read-only root."""
    return NodeSpec(host=node["host"], container=node["container"], volume=node["volume"], image=component.image,
                    command=[], config_dir=component.config_dir, files={component.config_file: text},
                    memory_bytes=node["memory_mib"] * 1024 * 1024, labels=node_labels(addon, node, operation),
                    files_owner=(component.uid, component.gid), read_only=True)


def sentinel_spec(addon: Addon, node: dict, primary: dict, component: Component, operation, password: str,
                  sentinel_password: str) -> NodeSpec:
    text = sentinel_conf(sentinel=address(node), primary=address(primary), password=password,
                         sentinel_password=sentinel_password)
    return component_spec(addon, node, component, text, operation)


def proxy_spec(addon: Addon, node: dict, entry: Address, data_nodes: list[dict], sentinels: list[dict],
               component: Component, operation, password: str, sentinel_password: str) -> NodeSpec:
    """Every HAProxy of a cluster binds the same entry address and port (SO_REUSEPORT): the kernel
    spreads new connections over those alive, so one dying leaves the other serving the same URL."""
    text = haproxy_cfg(entry=entry, data_nodes={f"d{i}": address(n) for i, n in enumerate(data_nodes)},
                       sentinels=[address(s) for s in sentinels], password=password, sentinel_password=sentinel_password)
    return component_spec(addon, node, component, text, operation)
