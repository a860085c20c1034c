"""The Addon's engine upgrades (reference, "Database Upgrade"): the facts the Addon aggregate records,
attached to it as methods (domain/addon.py) so their events keep the Addon's own topics."""

from __future__ import annotations

from uuid import UUID

from domain.addon_rules import check_running


def request_upgrade(self, version: str, tls: bool, container: str, volume: str, operation_id: UUID,
                    host: str | None = None) -> None:
    """The node restarted on the new version's build, at the same place, its data kept; its TLS port
    kept if that build has TLS (one without drops it; a build with TLS gets one later, live). A Business
    addon's nodes are replaced one at a time: its node is then the first new one, on `host`."""
    check_running(self, "be upgraded")
    self._upgrade_requested(operation_id=operation_id, version=version, container=container, volume=volume,
                            tls_port=self.tls_port if tls else None, host=host)


def upgrade_requested(self, operation_id: UUID, version: str, container: str, volume: str,
                      tls_port: int | None, host: str | None = None) -> None:
    self.status = "upgrading"
    self.operation_id = operation_id
    self.target = dict(self.previous_node, plan=self.plan, memory_mib=self.memory_mib, container=container,
                       volume=volume, redis_version=version, tls_port=tls_port)
    if host is not None:
        self.target["host"] = host


def mark_upgraded(self, operation_id: UUID) -> None:
    self._upgraded(operation_id=operation_id, version=self.target["redis_version"], tls_port=self.target["tls_port"])


def upgraded(self, operation_id: UUID, version: str, tls_port: int | None) -> None:
    self.replaced = self.previous_node
    self.redis_version, self.container, self.volume = version, self.target["container"], self.target["volume"]
    self.host = self.target["host"]
    self.tls_port, self.target, self.status, self.operation_id = tls_port, None, "running", None


def mark_upgrade_failed(self, operation_id: UUID, reason: str) -> None:
    """The former version serves on, with its data."""
    self.target, self.status, self.failure, self.operation_id = None, "running", reason, None
