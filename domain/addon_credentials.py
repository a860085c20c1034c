"""The Addon's password rotation (issue 15, "credentials rotation with no downtime"): the facts the Addon
aggregate records, attached to it as methods (domain/addon.py) so their events keep the Addon's own topics.
No password rides on them: the passwords live in the secret store only."""

from __future__ import annotations

from uuid import UUID

from domain.addon_rules import check_running


def start_credentials_rotation(self, operation_id: UUID) -> None:
    """The rotation holds the addon like any operation: a plan change meanwhile would make a node with
    whichever password it read."""
    check_running(self, "have its password rotated")
    self._credentials_rotation_started(operation_id=operation_id)


def credentials_rotation_started(self, operation_id: UUID) -> None:
    self.operation_id = operation_id


def mark_credentials_rotated(self, operation_id: UUID) -> None:
    self.operation_id = None


def mark_credentials_rotation_failed(self, operation_id: UUID, reason: str) -> None:
    self.failure = reason
    self.operation_id = None
