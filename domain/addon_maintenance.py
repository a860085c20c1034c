"""The Addon's maintenance: the weekly window its user chose, and the move of its node onto its version's
current build (a security update rebuilt the image its version's tag names). Attached to the Addon as
methods (domain/addon.py) so their events keep the Addon's own topics.

The move is an upgrade to the same version (UpgradeRequested, Upgraded): the same sagas, the same facts;
its Operation's kind says it is maintenance."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.addon_rules import check_running
from domain.errors import AddonRemoved, DomainError
from domain.maintenance_window import MaintenanceWindow


class BuildCurrent(DomainError):
    """Maintenance moves an addon off an outdated build only."""

    rule = "maintenance-needs-an-outdated-build"
    status = 409


class MaintenanceNotAvailable(DomainError):
    rule = "maintenance-not-available-yet"
    status = 409


def maintenance_window(self) -> MaintenanceWindow | None:
    window = getattr(self, "maintenance_at", None)  # an addon recorded before windows existed has none
    return MaintenanceWindow(**window) if window else None


def set_maintenance_window(self, window: MaintenanceWindow | None) -> None:
    """None: no window, the user moves the addon (`database-maintenance`)."""
    if self.status == "removed":
        raise AddonRemoved(f"addon {self.name} is removed")
    if window == self.maintenance_window:
        return
    if window is None:
        self._maintenance_window_removed()
    else:
        self._maintenance_window_set(day=window.day, hour=window.hour, minute=window.minute, zone=window.zone)


def maintenance_window_set(self, day: int, hour: int, minute: int, zone: str) -> None:
    self.maintenance_at = dict(day=day, hour=hour, minute=minute, zone=zone)


def maintenance_window_removed(self) -> None:
    self.maintenance_at = None


def request_maintenance(self, container: str, volume: str, operation_id: UUID, host: str | None = None,
                        window_opened: datetime | None = None) -> None:
    """Its node restarted on the current build of the version it runs, its data and TLS port kept. A
    Business addon's nodes are replaced one at a time: its node is then the first new one, on `host`.
    `window_opened`: started by the scheduler in the window that opened then (once per window)."""
    check_running(self, "have its maintenance")
    if window_opened is not None:
        self._maintenance_window_used(opened_at=window_opened.isoformat())
    self._upgrade_requested(operation_id=operation_id, version=self.redis_version, container=container,
                            volume=volume, tls_port=self.tls_port, **({"host": host} if host else {}))


def maintenance_window_used(self, opened_at: str) -> None:
    self.maintenance_window_used_at = opened_at


def used_window(self, opened: datetime) -> bool:
    """Whether the scheduler started a maintenance in the window that opened at `opened` (tried once per window)."""
    return getattr(self, "maintenance_window_used_at", None) == opened.isoformat()
