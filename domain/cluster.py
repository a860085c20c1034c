"""The Cluster aggregate: the nodes that serve one addon, and what was observed of them.

Every addon has one. A sandbox or starter addon is a cluster of one data node; a Business addon
will have two data nodes, three Sentinels and two HAProxy. The Addon keeps what the app sees
(plan, settings, URLs, schedule); the Cluster keeps where each node runs and what became of it:
placed, started, down, recovered, retired, and which data node is the primary.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

ROLES = ("data", "sentinel", "proxy")
LIVE = ("placed", "running", "down")  # a node in these states is one of the cluster's and holds its host's
# memory and ports; a node "left" behind on a host that does not answer holds them too, until retired


def node_record(role: str, host: str, address: str, port: int, container: str, volume: str, memory_mib: int,
                version: str, tls_port: int | None = None) -> dict:
    """A node as the Cluster records it; its ID is its container's name (unique, made by the operation)."""
    if role not in ROLES:
        raise ValueError(f"unknown node role {role!r}: one of {', '.join(ROLES)}")
    return dict(id=container, role=role, host=host, address=address, port=port, tls_port=tls_port,
                container=container, volume=volume, memory_mib=memory_mib, version=version)


class Cluster(Aggregate):
    @staticmethod
    def create_id(addon: str, **_) -> UUID:
        return Cluster.id_for(addon)

    @staticmethod
    def id_for(addon: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/addons/{addon}/cluster")

    @event("Formed")
    def __init__(self, addon: str, app: str, adopted: bool = False):
        """`adopted`: formed for an addon recorded before clusters existed, from what its events said."""
        self.addon = addon
        self.app = app
        self.nodes: dict[str, dict] = {}
        self.primary: str | None = None
        self.primaries: list[dict] = []  # the history: each change with its times and reason

    # -- queries --------------------------------------------------------------------------

    def node(self, node_id: str) -> dict:
        return self.nodes[node_id]

    @property
    def live_nodes(self) -> list[dict]:
        return [n for n in self.nodes.values() if n["state"] in LIVE]

    @property
    def primary_node(self) -> dict | None:
        return self.nodes.get(self.primary) if self.primary else None

    def node_in(self, container: str) -> dict | None:
        return self.nodes.get(container)

    # -- facts ----------------------------------------------------------------------------

    @event("EntryReserved")
    def reserve_entry(self, host: str, address: str, port: int, tls_port: int | None = None) -> None:
        """The address and port in REDIS_URL (and, where the cluster serves TLS, the port of its
        rediss:// URL), which every HAProxy binds: held on `host` (whose address it is) for the
        addon's life, whichever HAProxy placed there first is replaced."""
        self.entry = dict(host=host, address=address, port=port, tls_port=tls_port)

    @event("EntryReleased")
    def release_entry(self) -> None:
        """No HAProxy binds the entry any more (the addon moved onto a single node): its ports are free."""
        self.entry = None

    @event("NodePlaced")
    def place_node(self, node: dict) -> None:
        """A node has its host, ports and names; its container may not exist yet."""
        self.nodes[node["id"]] = {**node, "state": "placed"}

    @event("NodeAdopted")
    def adopt_node(self, node: dict, state: str, primary: bool) -> None:
        self.nodes[node["id"]] = {**node, "state": state}
        if primary:
            self.primary = node["id"]

    @event("NodeStarted")
    def mark_node_started(self, node_id: str) -> None:
        self.nodes[node_id]["state"] = "running"

    def change_primary(self, new: str, reason: str, observed_at: str | None = None) -> None:
        self._primary_changed(old=self.primary, new=new, reason=reason, observed_at=observed_at)

    @event("PrimaryChanged")
    def _primary_changed(self, new: str, reason: str, observed_at: str | None = None, old: str | None = None) -> None:
        """`old` is in the event for its readers (the log, its stream); recordings made before it was have none."""
        self.primaries.append(dict(old=self.primary, new=new, reason=reason, observed_at=observed_at))
        self.primary = new

    @event("NodePortsChanged")
    def change_node_ports(self, node_id: str, tls_port: int | None) -> None:
        self.nodes[node_id]["tls_port"] = tls_port

    @event("NodeVersionChanged")
    def change_node_version(self, node_id: str, version: str) -> None:
        self.nodes[node_id]["version"] = version

    def mark_node_down(self, node_id: str, reason: str, observed_at: str) -> None:
        """Observed by a watcher: the node does not run (its container gone, killed, crash-looping)."""
        if self.nodes[node_id]["state"] in ("placed", "running"):
            self._node_down(node_id=node_id, reason=reason, observed_at=observed_at)

    @event("NodeDown")
    def _node_down(self, node_id: str, reason: str, observed_at: str) -> None:
        self.nodes[node_id]["state"] = "down"
        self.nodes[node_id]["down_reason"] = reason

    def mark_node_recovered(self, node_id: str, how: str, observed_at: str) -> None:
        """Observed by a watcher: the node serves again. A node retired meanwhile stays retired."""
        if self.nodes[node_id]["state"] == "down":
            self._node_recovered(node_id=node_id, how=how, observed_at=observed_at)

    @event("NodeRecovered")
    def _node_recovered(self, node_id: str, how: str, observed_at: str) -> None:
        self.nodes[node_id]["state"] = "running"
        self.nodes[node_id].pop("down_reason", None)

    @property
    def degraded(self) -> bool:
        return getattr(self, "degraded_since", None) is not None

    def mark_degraded(self, reason: str, observed_at: str) -> None:
        """The primary has no replica in sync: it takes writes without one until redundancy is back."""
        if not self.degraded:
            self._degraded(reason=reason, observed_at=observed_at)

    @event("Degraded")
    def _degraded(self, reason: str, observed_at: str) -> None:
        self.degraded_since = observed_at

    def mark_redundant(self, observed_at: str) -> None:
        if self.degraded:
            self._redundant(observed_at=observed_at)

    @event("RedundancyRestored")
    def _redundant(self, observed_at: str) -> None:
        self.degraded_since = None

    def wait_for_replacement(self, node_id: str, reason: str, observed_at: str) -> None:
        """A node that must be replaced cannot be yet (no host with room for its spread): recorded once per reason."""
        if self.nodes[node_id].get("waiting") != reason:
            self._replacement_waiting(node_id=node_id, reason=reason, observed_at=observed_at)

    @event("ReplacementWaiting")
    def _replacement_waiting(self, node_id: str, reason: str, observed_at: str) -> None:
        self.nodes[node_id]["waiting"] = reason

    # -- what the Sentinels say (their +sdown, +odown and -sdown, -odown notifications) --------------

    @property
    def seen_down(self) -> dict[str, dict]:
        """node id -> {"sdown" or "odown": {"seen_by", "at"}}: the episodes open now. A Sentinel that cannot
        reach a node sees it down subjectively (sdown); once a quorum agrees, objectively (odown)."""
        return self.__dict__.setdefault("_seen_down", {})

    def sentinels_saw_down(self, node_id: str, kind: str, seen_by: str, at: str) -> None:
        """Each Sentinel says so on its own: the first one is recorded, once per episode and node."""
        if kind not in ("sdown", "odown"):
            raise ValueError(f"unknown kind of down {kind!r}: sdown or odown")
        if kind not in self.seen_down.get(node_id, {}):
            self._sentinels_saw_down(node_id=node_id, kind=kind, seen_by=seen_by, at=at)

    @event("SentinelsSawDown")
    def _sentinels_saw_down(self, node_id: str, kind: str, seen_by: str, at: str) -> None:
        self.seen_down.setdefault(node_id, {})[kind] = dict(seen_by=seen_by, at=at)

    def sentinels_saw_up(self, node_id: str, kind: str, seen_by: str, at: str) -> None:
        """The first Sentinel to reach a node again ends its episode: -sdown ends both kinds (a node that
        answers is down neither way), -odown the odown one only."""
        if any(k in self.seen_down.get(node_id, {}) for k in ended_by(kind)):
            self._sentinels_saw_up(node_id=node_id, kind=kind, seen_by=seen_by, at=at)

    @event("SentinelsSawUp")
    def _sentinels_saw_up(self, node_id: str, kind: str, seen_by: str, at: str) -> None:
        seen = self.seen_down.get(node_id, {})
        for k in ended_by(kind):
            seen.pop(k, None)
        if not seen:
            self.seen_down.pop(node_id, None)

    @event("NodeLeftBehind")
    def leave_node_behind(self, node_id: str, reason: str) -> None:
        """Replaced, but its host did not answer to have it removed: it still holds its port there,
        and is removed when the host answers again."""
        self.nodes[node_id]["state"] = "left"
        self.nodes[node_id]["down_reason"] = reason

    @property
    def left_behind(self) -> list[dict]:
        return [n for n in self.nodes.values() if n["state"] == "left"]

    def retire_node(self, node_id: str) -> None:
        """Its container and volume are gone: it holds nothing any more. Retiring twice records once."""
        if node_id in self.nodes and self.nodes[node_id]["state"] != "retired":
            self._node_retired(node_id=node_id)

    @event("NodeRetired")
    def _node_retired(self, node_id: str) -> None:
        self.nodes[node_id]["state"] = "retired"
        if self.primary == node_id:
            self.primary = None


def ended_by(kind: str) -> tuple[str, ...]:
    """The episodes a Sentinel's -sdown or -odown ends."""
    return ("sdown", "odown") if kind == "sdown" else ("odown",)
