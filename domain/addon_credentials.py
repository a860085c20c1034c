"""The Addon's password rotation (issue 15, "credentials rotation with no downtime"): the facts the Addon
aggregate records, attached to it as methods (domain/addon.py) so their events keep the Addon's own topics.
No password rides on them: the passwords live in the secret store only."""

from __future__ import annotations

from uuid import UUID

from domain.addon_rules import check_running
from domain.errors import RotationNeedsEveryNode, RotationNeedsRestartMethod


def start_credentials_rotation(self, operation_id: UUID, restart: dict | None, down: list[str]) -> None:
    """The rotation holds the addon like any operation: a plan change meanwhile would make a node with
    whichever password it read. `restart`: the app's restart method (None: not registered); `down`: the
    data nodes and Sentinels of the addon recorded down."""
    check_running(self, "have its password rotated")
    if (restart or {}).get("kind") in (None, "none"):  # the old password is refused at the end: the app with it
        raise RotationNeedsRestartMethod(
            f"app {self.app} has no restart method: a rotation would cut it off (the old password is refused once "
            "the new one is published, and nothing would restart the app onto it); register one with "
            "apps-register (--restart docker --label KEY=VALUE, or --restart hook --url URL)")
    if down:  # it would keep the old password in its files; the steps and their undo would wait for it
        raise RotationNeedsEveryNode(
            f"addon {self.name} has {', '.join(down)} recorded down: every data node and Sentinel must take the "
            "new password; rotate once the cluster is whole again (see `nodes`)")
    self._credentials_rotation_started(operation_id=operation_id)


def credentials_rotation_started(self, operation_id: UUID) -> None:
    self.operation_id = operation_id


def mark_credentials_rotated(self, operation_id: UUID) -> None:
    self.operation_id = None


def mark_credentials_rotation_failed(self, operation_id: UUID, reason: str) -> None:
    self.failure = reason
    self.operation_id = None
