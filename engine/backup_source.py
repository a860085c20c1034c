"""Which node a backup is taken on (reference, "Backups"; issue 12).

A Starter addon has one node: the backup is taken there, as it always was. A Business addon's is
taken on a replica, so that the primary, which serves the app, never forks for a backup: the primary
names its replicas (INFO replication, `state=online`); the first of them, most advanced first, that
is in sync takes the snapshot.

In sync, here: the replica has applied every write the primary had made when the save began, that
is its own offset reaches the primary's master_repl_offset read just before, within
IN_SYNC_WITHIN_S. Its writes and its replication stream are then paused for the instant of its fork,
so its offset at that instant is the one its file records (never below the primary's offset read
first; above it by whatever was written meanwhile). Both offsets go with the backup. A replica that
cannot catch up within a second under the writes of the moment is lagging: a backup of it would miss
writes the app was told were made before the backup began.

When no replica is in sync (none online, all lagging, or gone as they were asked), the backup is
taken on the primary, as a Starter's, and says so: "taken on the primary: no replica in sync".

The node is recorded in the save step's outcome: the archive step reads that node's file, whatever
became of the others meanwhile (a failover between the steps changes nothing of where the file is).
The record step and a compensation set the save rules back on every data node of the cluster: on
that one, and on one a save run again after a crash may have left (it tried a replica, which then
fell behind, and was taken on the primary)."""

from __future__ import annotations

from domain.cluster import Cluster
from engine.clusters import serving_node
from engine.data_node_settings import data_nodes, replicated
from engine.nodes import endpoint
from engine.ports import EffectError, Endpoint, RedisAdmin, TransientError

IN_SYNC_WITHIN_S = 1.0
ON_THE_PRIMARY = "taken on the primary: no replica in sync"


async def take_snapshot(redis: RedisAdmin, cluster: Cluster, password: str) -> dict:
    """The save step's outcome: the key counts of the file saved; on a Business cluster, also
    "taken_on": {node, role, offset, primary_offset} or, on the primary, {node, role, note, why}."""
    primary = serving_node(cluster)
    at_primary = endpoint(primary, password)
    if not replicated(cluster):
        return await redis.snapshot(at_primary)
    why = []
    for replica in await replicas_online(redis, cluster, at_primary):
        try:
            taken = await redis.snapshot_in_sync(endpoint(replica, password), at_primary, IN_SYNC_WITHIN_S)
        except TransientError as e:  # gone since the primary named it: as good as not in sync
            why.append(f"replica {replica['id']} does not answer ({e})")
            continue
        offsets = {"offset": taken.pop("offset"), "primary_offset": taken.pop("primary_offset")}
        if taken.pop("in_sync"):
            return {**taken, "taken_on": {"node": replica["id"], "role": "replica", **offsets}}
        why.append(f"replica {replica['id']} at offset {offsets['offset']} had not reached the primary's "
                   f"{offsets['primary_offset']} within {IN_SYNC_WITHIN_S:g} s")
    counts = await redis.snapshot(at_primary)
    return {**counts, "taken_on": {"node": primary["id"], "role": "primary", "note": ON_THE_PRIMARY,
                                   "why": "; ".join(why) or "the primary has no replica online"}}


async def replicas_online(redis: RedisAdmin, cluster: Cluster, at_primary: Endpoint) -> list[dict]:
    """The cluster's data nodes that the primary reports as replicas online, the most advanced first."""
    info = await redis.replication(at_primary)
    online = {f"{v.get('ip')}:{v.get('port')}": int(v.get("offset", 0)) for k, v in info.items()
              if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"}
    replicas = [n for n in cluster.live_nodes
                if n["role"] == "data" and n["id"] != cluster.primary and f"{n['address']}:{n['port']}" in online]
    return sorted(replicas, key=lambda n: -online[f"{n['address']}:{n['port']}"])


def saved_on(cluster: Cluster, outcome: dict | None) -> dict:
    """The node whose file the save step wrote: the one it recorded, else (a single node, a save recorded
    before backups said where) the primary."""
    taken_on = (outcome or {}).get("taken_on")
    if taken_on is None:
        return serving_node(cluster)
    node = cluster.nodes.get(taken_on["node"])
    if node is None:
        raise EffectError(f"node {taken_on['node']} of addon {cluster.addon}, where the backup was saved, is not known")
    return node


def described(taken_on: dict | None) -> str:
    """Where a backup was taken, as a step's detail and the backup's listing say it."""
    if not taken_on:
        return ""
    if taken_on["role"] == "replica":
        return (f" on replica {taken_on['node']} at replication offset {taken_on['offset']} (the primary's was "
                f"{taken_on['primary_offset']} as the save began)")
    return f" on primary {taken_on['node']}: {taken_on['note'].removeprefix('taken on the primary: ')} ({taken_on['why']})"


def saves_to_resume(cluster: Cluster, outcome: dict | None) -> list[dict]:
    """The nodes whose save rules a backup turned off, or may have: a single node's own; every data node
    of a Business cluster."""
    return data_nodes(cluster) if replicated(cluster) else [saved_on(cluster, outcome)]
