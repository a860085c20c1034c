"""The roster of every host name the installation has known: one aggregate, so the engine finds its hosts
at start without reading the whole log. A host's own facts are on its Host aggregate (domain/host.py)."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

ROSTER_ID = uuid5(NAMESPACE_URL, "redis-addons:/hosts")


class HostRoster(Aggregate):
    @staticmethod
    def create_id() -> UUID:
        return ROSTER_ID

    @event("Opened")
    def __init__(self):
        self.names: list[str] = []

    def enrol(self, name: str) -> None:
        if name not in self.names:
            self._enrolled(name=name)

    @event("HostEnrolled")
    def _enrolled(self, name: str) -> None:
        self.names.append(name)
