"""One move of a drain, started through the sagas that already move nodes (domain/host_drain.py says which):

- a single node: a plan change onto its own plan (engine/plan_change.py): stopped, its data copied to a
  node on another host, verified, published, the app restarted onto its new URL; before `publish` a
  failure brings it back where it was;
- a Business cluster's data nodes: a plan change of the cluster onto its own plan
  (engine/cluster_plan_change.py): new data nodes in sync, then the primary switched with writes paused;
- a Business cluster's Sentinel or HAProxy: a node replacement (engine/node_replacement.py), as healing
  does. A Sentinel to replace is stopped once the replacement holds the addon: it would otherwise still
  announce itself, and the Sentinels must count the new one in its place; two of three still elect.

The placer never offers a draining host. Where the hosts left cannot keep a group spread (three Sentinels
on two hosts), the node goes to any host with room, and the drain says the spread is lost.
"""

from __future__ import annotations

from datetime import datetime, timezone

import structlog

from domain.addon import Addon
from domain.cluster import LIVE
from domain.errors import NoHostWithRoom
from domain.host_drain import MOVE_DATA, MOVE_NODE, Move
from domain.operation import Operation
from domain.placement import Placement
from engine.cluster_forming import replacement_node
from engine.clusters import cluster_of, data_node, redundant_pair, serving_node
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.plan_requests import place_replacements
from engine.ports import EffectError, Runtime, TransientError
from engine.store import EventLog

log = structlog.get_logger("hosts")

STOP_TIMEOUT_S = 10


class Mover:
    def __init__(self, events: EventLog, runtime: Runtime, placing: Placing, starter: OperationStarter, versions):
        self.events, self.runtime, self.placing, self.starter, self.versions = events, runtime, placing, starter, versions

    async def start(self, move: Move, host: str) -> dict | None:
        """Start `move` of a node off `host`; returns the operation started and where the node goes, or None
        when the log says the node left the host already (the read models the drain looked at were behind)."""
        addon: Addon = await self.events.get(Addon.id_for(move.addon))
        if move.how == MOVE_NODE:
            return await self._move_node(addon, host)
        if move.how == MOVE_DATA:
            return await self._move_data_nodes(addon, host)
        return await self._replace(addon, move.node_id, host)

    async def _move_node(self, addon: Addon, host: str) -> dict | None:
        cluster = await cluster_of(self.events, addon.name)
        serving = serving_node(cluster)
        if serving["host"] != host:
            return None
        async with self.placing.held() as placer:
            where = placer.node(addon.memory_mib, tls=self.versions.get(addon.redis_version).tls,
                                exclude_host=serving["host"])
            operation = Operation(kind="change_plan", addon=addon.name, app=addon.app, subject="drain")
            node = f"redis-addons-{addon.name}-{operation.id.hex[:8]}"
            addon.request_move(where, node, f"{node}-data", operation.id)
            cluster.place_node(data_node(addon, addon.target, operation.id))
            await self.starter.record(operation, addon, cluster)
        return {"operation_id": str(operation.id), "to": where.host}

    async def _move_data_nodes(self, addon: Addon, host: str) -> dict | None:
        cluster = await cluster_of(self.events, addon.name)
        if not any(n["role"] == "data" and n["host"] == host for n in cluster.live_nodes):
            return None
        primary, replica = redundant_pair(cluster, addon.name, "its data nodes can move off a drained host")
        async with self.placing.held() as placer:
            operation = Operation(kind="change_cluster_plan", addon=addon.name, app=addon.app, subject=primary["id"])
            new = place_replacements(placer, addon, cluster, (primary, replica), operation, addon.memory_mib)
            entry = Placement(  # the entry's address stays: only the data nodes move
                new[0]["host"], addon.address, addon.port, addon.tls_port)
            addon.request_move(entry, new[0]["container"], new[0]["volume"], operation.id)
            await self.starter.record(operation, addon, cluster)
        return {"operation_id": str(operation.id), "to": ", ".join(n["host"] for n in new)}

    async def _replace(self, addon: Addon, node_id: str, host: str) -> dict | None:
        cluster = await cluster_of(self.events, addon.name)
        old = cluster.node(node_id)
        if old["state"] not in LIVE or old["host"] != host:
            return None
        spread_lost = ""
        async with self.placing.held() as placer:
            avoid = {n["host"]: f"holds {n['container']}" for n in cluster.live_nodes
                     if n["role"] == old["role"] and n["id"] != old["id"]}
            try:
                where = placer.replacement(old["role"], old["memory_mib"], avoid)
            except NoHostWithRoom as error:  # the hosts left cannot keep the group spread: any host with room
                where = placer.replacement(old["role"], old["memory_mib"], {})
                spread_lost = f"; its {old['role']} group is no longer spread over distinct hosts ({error})"
            operation = Operation(kind="replace_node", addon=addon.name, app=addon.app, subject=old["id"])
            addon.start_node_replacement(operation.id)
            if old["role"] == "sentinel":
                cluster.mark_node_down(old["id"], f"stopped: its host {host} is drained", utc_now())
            primary = cluster.primary_node
            version = primary["version"] if old["role"] == "data" and primary is not None else None
            cluster.place_node(replacement_node(addon, cluster, old, where, operation, version=version))
            await self.starter.record(operation, addon, cluster)
        if old["role"] == "sentinel":
            await self._stop(old)
        if spread_lost:
            log.warning("drain: a node group is no longer spread", addon=addon.name, node=old["id"], to=where.host)
        return {"operation_id": str(operation.id), "to": where.host, "note": spread_lost.lstrip("; ")}

    async def _stop(self, node: dict) -> None:
        try:
            await self.runtime.stop_node(node["host"], node["container"], STOP_TIMEOUT_S)
        except (TransientError, EffectError) as error:  # its host does not answer: it announces nothing either
            log.warning("drain: the Sentinel to replace could not be stopped", node=node["id"], error=str(error))


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()
