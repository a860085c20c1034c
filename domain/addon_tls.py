"""The Addon's TLS serving and certificate renewal: the facts the Addon aggregate records, attached to
it as methods (domain/addon.py) so their events keep the Addon's own topics."""

from __future__ import annotations

from uuid import UUID

from domain.addon_rules import check_running
from domain.errors import SettingUnchanged


def request_tls_port(self, tls_port: int, operation_id: UUID) -> None:
    """A node made before TLS was served here starts serving it, beside plaintext, live."""
    check_running(self, "start serving TLS")
    if self.tls_port is not None:
        raise SettingUnchanged(f"addon {self.name} serves TLS already, on port {self.tls_port}")
    self._tls_port_requested(operation_id=operation_id, tls_port=tls_port)


def tls_port_requested(self, operation_id: UUID, tls_port: int) -> None:
    self.operation_id = operation_id
    self.target = dict(self.previous_node, memory_mib=self.memory_mib, tls_port=tls_port)


def mark_tls_served(self, operation_id: UUID) -> None:
    self._tls_served(operation_id=operation_id, tls_port=self.target["tls_port"])


def tls_served(self, operation_id: UUID, tls_port: int) -> None:
    self.tls_port = tls_port
    self.target = None
    self.operation_id = None


def mark_tls_serving_failed(self, operation_id: UUID, reason: str) -> None:
    self.target = None
    self.failure = reason
    self.operation_id = None


def start_certificate_renewal(self, operation_id: UUID) -> None:
    """The node gets a new server certificate before the one it serves expires (it holds the addon
    like any operation: a plan change meanwhile would renew a node being replaced)."""
    check_running(self, "renew its TLS certificate")
    self.check_serves_tls()
    self._certificate_renewal_started(operation_id=operation_id)


def certificate_renewal_started(self, operation_id: UUID) -> None:
    self.operation_id = operation_id


def mark_certificate_renewed(self, operation_id: UUID, not_after: str) -> None:
    self.operation_id = None


def mark_certificate_renewal_failed(self, operation_id: UUID, reason: str) -> None:
    """The node serves the certificate it had; the next check tries again."""
    self.failure = reason
    self.operation_id = None
