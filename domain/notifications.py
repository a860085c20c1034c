"""What a webhook is told: the facts of the log that someone must hear of, as JSON messages.

Pure: an event (and the aggregate it belongs to, for the app and addon it is about) in, a message or
None out. Each delivery's ID is derived from what it is about and the webhook, never drawn at random,
so a delivery sent again after a retry or a crash carries the same ID and receivers drop duplicates."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from domain.backup import Backup
from domain.cluster import Cluster
from domain.operation import Operation

NODE_DOWN, NODE_UP = "node.down", "node.up"
DEGRADED, REDUNDANT = "cluster.degraded", "cluster.redundant"
NEEDS_ATTENTION = "operation.needs_attention"
BACKUP_FAILED = "backup.failed"
BUILD_OUTDATED = "addon.build_outdated"
TYPES = (NODE_DOWN, NODE_UP, DEGRADED, REDUNDANT, NEEDS_ATTENTION, BACKUP_FAILED, BUILD_OUTDATED)

# The event classes that may make a message: only for these is the aggregate loaded.
_MAY_NOTIFY = (Cluster.NodeDown, Cluster.NodeRecovered, Cluster.Degraded, Cluster.RedundancyRestored,
               Cluster.SentinelsSawDown, Cluster.SentinelsSawUp, Operation.CompensationFailed, Backup.Failed)


def may_notify(event) -> bool:
    return isinstance(event, _MAY_NOTIFY)


def message_for(event, subject) -> dict | None:
    """The message an event makes, or None. `subject` is the aggregate the event belongs to (the Cluster,
    the Operation or the Backup): it names the app and the addon."""
    if not may_notify(event):
        return None
    about = {"app": subject.app, "addon": subject.addon}
    if isinstance(event, (Cluster.NodeDown, Cluster.NodeRecovered)):
        down = isinstance(event, Cluster.NodeDown)
        return {"type": NODE_DOWN if down else NODE_UP, **about, **_node(subject, event.node_id),
                "reason": event.reason if down else event.how, "observed_by": "engine", "at": _when(event.observed_at)}
    if isinstance(event, (Cluster.SentinelsSawDown, Cluster.SentinelsSawUp)):
        if event.kind != "sdown":  # odown follows sdown in the same episode: told once, when the first saw it
            return None
        down = isinstance(event, Cluster.SentinelsSawDown)
        return {"type": NODE_DOWN if down else NODE_UP, **about, **_node(subject, event.node_id),
                "reason": f"a Sentinel ({event.seen_by}) {'cannot reach it' if down else 'reaches it again'}",
                "observed_by": "sentinels", "at": _when(event.at)}
    if isinstance(event, Cluster.Degraded):
        return {"type": DEGRADED, **about, "reason": event.reason, "at": _when(event.observed_at)}
    if isinstance(event, Cluster.RedundancyRestored):
        return {"type": REDUNDANT, **about, "reason": "a replica is in sync again", "at": _when(event.observed_at)}
    if isinstance(event, Operation.CompensationFailed):
        return {"type": NEEDS_ATTENTION, **about, "operation": {"id": str(event.originator_id), "kind": subject.kind},
                "reason": event.error, "at": _when(event.timestamp)}
    if isinstance(event, Backup.Failed):
        if subject.kind != "scheduled":  # a manual backup's failure is told to whoever asked for it
            return None
        return {"type": BACKUP_FAILED, **about, "backup": str(event.originator_id), "reason": event.reason,
                "at": _when(event.timestamp)}
    return None


def build_outdated(row: dict, now: datetime) -> dict:
    """`row`: an addon running an outdated build ({app, addon, version, build, nodes}): a security
    update rebuilt its version's image, and its nodes run the one made before. `build` names the new one
    the same on every host (its root filesystem's SHA-256), not by a host's image ID."""
    return {"type": BUILD_OUTDATED, "app": row["app"], "addon": row["addon"], "version": row["version"],
            "build": row["build"], "nodes": list(row["nodes"]),
            "reason": f"a security update of {row['version']} is available: run database-maintenance, or let the "
                      "addon's maintenance window come", "at": _when(now)}


def event_key(position: int) -> str:
    """What a message made from the event at `position` of the log is about."""
    return f"event/{position}"


def build_key(addon: str, build: str) -> str:
    return f"build/{addon}/{build}"


def delivery_id(key: str, webhook_id: str) -> str:
    return str(uuid5(NAMESPACE_URL, f"redis-addons:/deliveries/{webhook_id}/{key}"))


def for_webhook(message: dict, scope: str | None) -> bool:
    """A webhook of one app hears of that app's addons; an operator's (scope None), of every app's."""
    return scope is None or message["app"] == scope


def signature(secret: str, body: bytes) -> str:
    """The X-Redis-Addons-Signature header: HMAC-SHA256 of the body with the webhook's signing secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _node(cluster: Cluster, node_id: str) -> dict:
    node = cluster.nodes.get(node_id) or {}
    return {"node": node_id, "role": node.get("role"), "host": node.get("host")}


def _when(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
