"""What the engine must know at once, kept in memory: who holds which host, port and name,
and which operations are unfinished. Built from the whole log at start, then kept current
from every event this process saves."""

from __future__ import annotations

from uuid import UUID

from domain.addon import Addon
from domain.operation import Operation
from domain.placement import Tenant


class Inventory:
    def __init__(self):
        self._addons: dict[str, dict] = {}  # name -> app, host, port, memory, holds
        self.unfinished: dict[UUID, str] = {}  # operation id -> addon name

    def apply(self, event) -> None:
        if isinstance(event, Addon.Requested):
            self._addons[event.name] = dict(
                app=event.app, host=event.host, port=event.port, memory_mib=event.memory_mib, holds=True
            )
        elif isinstance(event, (Addon.ProvisioningFailed, Addon.Removed)):
            name = self._name_of(event.originator_id)
            if name:
                self._addons[name]["holds"] = False
        elif isinstance(event, Operation.Started):
            self.unfinished[event.originator_id] = event.addon
        elif isinstance(event, (Operation.Succeeded, Operation.Compensated)):
            self.unfinished.pop(event.originator_id, None)

    def _name_of(self, addon_id: UUID) -> str | None:
        return next((n for n in self._addons if Addon.id_for(n) == addon_id), None)

    def tenants(self) -> list[Tenant]:
        return [Tenant(a["host"], a["port"], a["memory_mib"]) for a in self._addons.values() if a["holds"]]

    def name_taken(self, name: str) -> bool:
        return name in self._addons

    def app_known(self, app: str) -> bool:
        return any(a["app"] == app for a in self._addons.values())
