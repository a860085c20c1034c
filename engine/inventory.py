"""What the engine must know at once, kept in memory: who holds which host, port and name,
and which operations are unfinished. A read model of the log with its tracking position: kept
current from every event this process saves, written as a checkpoint now and then, and at
start read back and caught up from its position, so start-up does not grow with history.

What a node holds comes from its Cluster's node records. An addon recorded before clusters
existed holds what its Addon events say until its cluster is adopted (at the engine's start)."""

from __future__ import annotations

from dataclasses import astuple, replace
from uuid import UUID

from domain.addon import Addon
from domain.app import App
from domain.cluster import LIVE, Cluster
from domain.operation import Operation
from domain.placement import Tenant


ENTRY = "entry"  # what a Business cluster's entry address holds, beside its nodes (never a container's name)
SHAPE = 3  # of the checkpoint: a checkpoint of another shape is dropped and the log read from its start


class Inventory:
    def __init__(self):
        self.position = 0  # the last event applied (its notification ID); 0 when only `apply` was used
        self._apps: dict[str, str] = {}  # addon name -> app
        self._app_names: set[str] = set()  # the apps of _apps, derived: app_known is asked at every request
        self._names: dict[UUID, str] = {}  # addon id -> addon name
        self._held: dict[tuple[str, str], Tenant] = {}  # (addon, "current" | "target") -> what it holds
        self.registered_apps: set[str] = set()
        self.unfinished: dict[UUID, str] = {}  # operation id -> addon name
        self._subjects: dict[UUID, str] = {}  # unfinished operation id -> what it is about (a backup's ID)
        self._clustered: set[str] = set()  # addons whose cluster holds their nodes
        self._nodes: dict[tuple[UUID, str], Tenant] = {}  # (cluster id, node id) -> what a live node holds
        self._removed: set[str] = set()  # addons removed: they need no cluster adopted

    def apply_at(self, position: int, event) -> None:
        """Apply the event at `position` of the log, once: what was applied already is passed over."""
        if position > self.position:
            self.apply(event)
            self.position = position

    def apply(self, event) -> None:
        if isinstance(event, Cluster.Event):
            self._apply_cluster(event)
        elif isinstance(event, Addon.Event):
            self._apply_addon(event)
        elif isinstance(event, App.Registered):
            self.registered_apps.add(event.name)
        elif isinstance(event, Operation.Started):
            self.unfinished[event.originator_id] = event.addon
            if getattr(event, "subject", None):
                self._subjects[event.originator_id] = event.subject
        elif isinstance(event, Operation.StepSucceeded) and event.step == "cleanup":
            self._held.pop((self.unfinished.get(event.originator_id), "replaced"), None)
        elif isinstance(event, (Operation.Succeeded, Operation.Compensated, Operation.Abandoned)):
            self.unfinished.pop(event.originator_id, None)
            self._subjects.pop(event.originator_id, None)

    def _apply_addon(self, event) -> None:
        if isinstance(event, Addon.Requested):
            self._names[event.originator_id] = event.name
            self._apps[event.name] = event.app
            self._app_names.add(event.app)
            if event.name not in self._clustered:
                self._held[(event.name, "current")] = tenant(event)
            return
        name = self._names.get(event.originator_id)
        if isinstance(event, Addon.Removed):
            self._removed.add(name)
        if name in self._clustered:
            if isinstance(event, (Addon.Removed, Addon.ProvisioningFailed)):
                self._held.pop((name, "current"), None)
                self._nodes.pop((Cluster.id_for(name), ENTRY), None)
            return
        if isinstance(event, Addon.PlanChangeRequested):
            self._held[(name, "target")] = tenant(event)
        elif isinstance(event, Addon.PlanChanged):
            # The old node is released once its cleanup is done; until then it still holds its port.
            self._held[(name, "replaced")] = self._held[(name, "current")]
            self._held[(name, "current")] = self._held.pop((name, "target"))
        elif isinstance(event, Addon.PlanChangeFailed):
            self._held.pop((name, "target"), None)
        elif isinstance(event, Addon.TlsPortRequested):  # held from the request on; given back if it fails
            self._held[(name, "current")] = replace(self._held[(name, "current")], tls_port=event.tls_port)
        elif isinstance(event, Addon.TlsServingFailed):
            self._held[(name, "current")] = replace(self._held[(name, "current")], tls_port=None)
        elif isinstance(event, (Addon.ProvisioningFailed, Addon.Removed)):
            self._held.pop((name, "current"), None)

    def _apply_cluster(self, event) -> None:
        key = (event.originator_id, getattr(event, "node_id", None))
        if isinstance(event, Cluster.Formed):
            self._clustered.add(event.addon)
            for role in ("current", "target", "replaced"):
                self._held.pop((event.addon, role), None)
        elif isinstance(event, Cluster.NodePlaced) or (isinstance(event, Cluster.NodeAdopted) and event.state in LIVE):
            node = event.node
            self._nodes[(event.originator_id, node["id"])] = Tenant(node["host"], node["port"], node["memory_mib"],
                                                                    node.get("tls_port"))
        elif isinstance(event, Cluster.EntryReserved):  # no node's: bound by every HAProxy of the cluster
            self._nodes[(event.originator_id, ENTRY)] = Tenant(event.host, event.port, 0, getattr(event, "tls_port", None))
        elif isinstance(event, Cluster.EntryReleased):  # the cluster is gone: the addon moved onto a single node
            self._nodes.pop((event.originator_id, ENTRY), None)
        elif isinstance(event, Cluster.NodePortsChanged) and key in self._nodes:
            self._nodes[key] = replace(self._nodes[key], tls_port=event.tls_port)
        elif isinstance(event, Cluster.NodeRetired):
            self._nodes.pop(key, None)

    def has_cluster(self, addon: str) -> bool:
        return addon in self._clustered

    @property
    def addons_without_cluster(self) -> list[str]:
        return [name for name in self._apps if name not in self._clustered and name not in self._removed]

    def legacy_holdings(self, addon: str) -> dict[str, Tenant]:
        """What an addon without a cluster holds, by role: current, target, replaced (not yet cleaned up)."""
        return {role: t for (name, role), t in self._held.items() if name == addon}

    def subjects_of_unfinished_operations(self) -> set[str]:
        return set(self._subjects.values())

    def tenants(self) -> list[Tenant]:
        return list(self._held.values()) + list(self._nodes.values())

    def name_taken(self, name: str) -> bool:
        return name in self._apps

    def app_known(self, app: str) -> bool:
        return app in self.registered_apps or app in self._app_names


    # -- the checkpoint ------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "shape": SHAPE, "position": self.position, "apps": dict(self._apps),  # a copy: written on another thread
            "names": {str(k): v for k, v in self._names.items()},
            "held": [[addon, role, *astuple(t)] for (addon, role), t in self._held.items()],
            "registered_apps": sorted(self.registered_apps),
            "unfinished": {str(k): v for k, v in self.unfinished.items()},
            "subjects": {str(k): v for k, v in self._subjects.items()},
            "clustered": sorted(self._clustered),
            "nodes": [[str(cluster), node, *astuple(t)] for (cluster, node), t in self._nodes.items()],
            "removed": sorted(self._removed),
        }

    @classmethod
    def from_state(cls, state: dict | None) -> Inventory:
        """The inventory a checkpoint kept; an empty one for none, or for a checkpoint of another shape."""
        inventory = cls()
        if not state or state.get("shape") != SHAPE:
            return inventory
        inventory.position = state["position"]
        inventory._apps = dict(state["apps"])
        inventory._app_names = set(inventory._apps.values())
        inventory._names = {UUID(k): v for k, v in state["names"].items()}
        inventory._held = {(addon, role): Tenant(*rest) for addon, role, *rest in state["held"]}
        inventory.registered_apps = set(state["registered_apps"])
        inventory.unfinished = {UUID(k): v for k, v in state["unfinished"].items()}
        inventory._subjects = {UUID(k): v for k, v in state["subjects"].items()}
        inventory._clustered = set(state["clustered"])
        inventory._nodes = {(UUID(cluster), node): Tenant(*rest) for cluster, node, *rest in state["nodes"]}
        inventory._removed = set(state["removed"])
        return inventory

    def take_state_of(self, other: Inventory) -> None:
        """Become `other` (read from a checkpoint), keeping this object: the engine's services hold it."""
        self.__dict__.update(other.__dict__)


def tenant(event) -> Tenant:
    """What a node placed by this event holds (events recorded before TLS ports existed hold none)."""
    return Tenant(event.host, event.port, event.memory_mib, getattr(event, "tls_port", None))
