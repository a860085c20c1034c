"""A Business addon's settings (RDB, AOF, cache mode) on every data node of its cluster, as the
settings saga applies and verifies them (engine/settings_change.py).

Each node takes them live (CONFIG SET), then its redis.conf is written again from them with the
replication lines of the role it has now, asked of the node itself (the Cluster's record of the
primary may lag a failover by a watcher round): a restarted node keeps its settings and its role.
A replica's file says `replica-priority 0`, as the healer writes it (engine/cluster_healing.py):
a replica read from its file is one restarting, not in sync, and must not be elected before it is.

A node that does not run is not waited for. Its file is written if its container is there (with
the role the Cluster records: the one the healer gives it too), so that whoever starts it again
starts it with the settings; a node whose container is gone, or whose host does not answer, takes
them from the addon when the healer replaces it or starts it again, which it does only once this
operation has ended (it leaves a cluster alone while an operation holds it), from the settings
then published. Failing the change instead would leave a user unable to turn AOF on for the very
cluster that just lost a node. At least one node must take them: otherwise the change fails.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import VersionCatalog
from domain.cluster import Cluster
from domain.operation import Operation
from domain.redis_config import live_settings
from engine.cluster_nodes import data_node_spec
from engine.nodes import endpoint
from engine.ports import EffectError, RedisAdmin, Runtime, TransientError

STOPPED, GONE = "stopped", "gone"  # what became of a data node that does not answer


def replicated(cluster: Cluster) -> bool:
    """A Business cluster (its data nodes in replication, watched by Sentinels), not a single node."""
    return any(n["role"] == "sentinel" for n in cluster.live_nodes)


def data_nodes(cluster: Cluster) -> list[dict]:
    """The cluster's data nodes, the primary last: the node the app writes to changes once the others did.
    Not those an operation placed and has not made yet (they are made with the addon's settings)."""
    nodes = [n for n in cluster.live_nodes if n["role"] == "data" and n["state"] != "placed"]
    return sorted(nodes, key=lambda n: n["id"] == cluster.primary)


class _WithSettings:
    """The addon as data_node_spec reads it (it takes `addon.settings`), with the settings being applied."""

    def __init__(self, addon: Addon, settings: dict):
        self._addon, self.settings = addon, settings

    def __getattr__(self, name: str):
        return getattr(self._addon, name)


class DataNodeSettings:
    def __init__(self, runtime: Runtime, redis: RedisAdmin, versions: VersionCatalog):
        self.runtime, self.redis, self.versions = runtime, redis, versions

    async def apply(self, addon: Addon, cluster: Cluster, operation: Operation, password: str, settings: dict,
                    require_one: bool = True) -> list[str]:
        """Each data node takes `settings`; returns what became of each. `require_one`: fail when none
        runs (a compensation puts back what it can, and never fails for that)."""
        wanted, done, taken = live_settings(settings), [], 0
        for node in data_nodes(cluster):
            info = await self._reached(node, password)
            if info == GONE:  # creating its container would make a node the healer is about to replace
                done.append(f"{node['container']} (gone or its host silent: it takes them when replaced)")
                continue
            if info == STOPPED:
                await self._write_file_only(addon, cluster, node, operation, password, settings)
                done.append(f"{node['container']} (stopped: its redis.conf has them for when it starts again)")
                continue
            await self.redis.configure(endpoint(node, password), wanted)
            await self.runtime.create_node(self._spec(addon, node, info, operation, password, settings))
            after = await self._reached(node, password)
            if not isinstance(after, dict) or _role(after) != _role(info):
                # A failover (or the node's end) between the question and the file: Sentinel's CONFIG
                # REWRITE may have come before ours. The step runs again and writes the role of now.
                raise TransientError(f"{node['container']} changed role while its redis.conf was written")
            done.append(f"{node['container']} ({'primary' if _role(info) is None else 'replica'})")
            taken += 1
        if require_one and not taken:
            raise EffectError(f"no data node of addon {addon.name} runs: none can take the settings ({'; '.join(done)})")
        return done

    async def verify(self, addon: Addon, cluster: Cluster, password: str, settings: dict) -> list[str]:
        """CONFIG GET on each data node that runs shows `settings`; returns the nodes checked."""
        wanted, checked = live_settings(settings), []
        for node in data_nodes(cluster):
            if not isinstance(await self._reached(node, password), dict):
                continue
            found = await self.redis.configuration(endpoint(node, password), list(wanted))
            wrong = {k: found.get(k) for k, v in wanted.items() if found.get(k) != v}
            if wrong:
                raise EffectError(f"data node {node['container']} did not take the settings: {wrong}")
            checked.append(node["container"])
        if not checked:
            raise EffectError(f"no data node of addon {addon.name} runs: the settings cannot be checked")
        return checked

    async def _reached(self, node: dict, password: str) -> dict | str:
        """INFO replication of a node that runs; else STOPPED (its container is there) or GONE (no
        container, or its host does not answer). One that runs but does not answer yet (loading its
        data) is waited for."""
        try:
            return await self.redis.replication(endpoint(node, password))
        except TransientError as unanswered:
            try:
                running = await self.runtime.is_running(node["host"], node["container"])
            except (TransientError, EffectError):
                return GONE
            if running:
                raise TransientError(f"data node {node['container']} runs but does not answer: {unanswered}") from None
            return GONE if running is None else STOPPED

    async def _write_file_only(self, addon: Addon, cluster: Cluster, node: dict, operation: Operation, password: str,
                               settings: dict) -> None:
        """A stopped node's file, with the role the Cluster records (the healer's when it starts it again)."""
        primary = cluster.primary_node
        recorded = None if primary is None or primary["id"] == node["id"] else primary
        await self.runtime.create_node(data_node_spec(_WithSettings(addon, settings), node, recorded, operation,
                                                      password, self.versions, promotable=recorded is None))

    def _spec(self, addon: Addon, node: dict, info: dict, operation: Operation, password: str, settings: dict):
        primary = _role(info)
        # The requirement the cluster was provisioned with (min-replicas-to-write 1): the failover
        # follower sets the live one each round, whatever the file says.
        return data_node_spec(_WithSettings(addon, settings), node, primary, operation, password, self.versions,
                              promotable=primary is None)


def _role(info: dict) -> dict | None:
    """None for a primary; for a replica, the address of the primary it replicates."""
    if info.get("role") == "master":
        return None
    return {"address": info["master_host"], "port": int(info["master_port"])}
