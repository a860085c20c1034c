"""The Addon aggregate: one managed Redis database of one app."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import AddonBusy, AddonRemoved, InvalidName

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,46}[a-z0-9]$")

# Settings every new addon starts with (reference: "Scalingo for Redis® Configuration").
DEFAULT_SETTINGS = {"rdb": True, "aof": False, "cache_mode": False, "force_tls": False}


def check_app_name(app: str) -> str:
    if not isinstance(app, str) or not APP_NAME.match(app):
        raise InvalidName(
            f"invalid app name {app!r}: use 3 to 48 lowercase letters, digits and dashes, "
            "starting with a letter"
        )
    return app


def addon_name(app: str, number: int) -> str:
    """Addon names read like the reference's `my-app-3030`."""
    return f"{check_app_name(app)}-{number:04d}"


class Addon(Aggregate):
    """Status moves provisioning -> running -> removing -> removed, or to failed."""

    @staticmethod
    def create_id(name: str, **_) -> UUID:
        return Addon.id_for(name)

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/addons/{name}")

    @event("Requested")
    def __init__(
        self,
        name: str,
        app: str,
        plan: str,
        memory_mib: int,
        redis_version: str,
        host: str,
        address: str,
        port: int,
        container: str,
        volume: str,
        operation_id: UUID,
        settings: dict,
    ):
        self.name = name
        self.app = app
        self.plan = plan
        self.memory_mib = memory_mib
        self.redis_version = redis_version
        self.host = host
        self.address = address
        self.port = port
        self.container = container
        self.volume = volume
        self.settings = dict(settings)
        self.status = "provisioning"
        self.operation_id: UUID | None = operation_id
        self.failure: str | None = None
        self.failure_kind: str | None = None

    @property
    def is_busy(self) -> bool:
        return self.operation_id is not None

    @property
    def holds_resources(self) -> bool:
        """Whether its host memory and port are taken: until it is removed or never started.
        A failed removal still holds them (the container may still be there)."""
        return self.status != "removed" and not (self.status == "failed" and self.failure_kind == "provisioning")

    @event("Provisioned")
    def mark_provisioned(self, operation_id: UUID) -> None:
        self.status = "running"
        self.operation_id = None

    @event("ProvisioningFailed")
    def mark_provisioning_failed(self, operation_id: UUID, reason: str) -> None:
        self.status = "failed"
        self.failure = reason
        self.failure_kind = "provisioning"
        self.operation_id = None

    def request_removal(self, operation_id: UUID) -> None:
        if self.status == "removed":
            raise AddonRemoved(f"addon {self.name} is already removed")
        if self.is_busy:
            raise AddonBusy(
                f"addon {self.name} is busy with operation {self.operation_id}; "
                "one operation at a time, try again when it has finished"
            )
        self._removal_requested(operation_id=operation_id)

    @event("RemovalRequested")
    def _removal_requested(self, operation_id: UUID) -> None:
        self.status = "removing"
        self.operation_id = operation_id

    @event("RemovalFailed")
    def mark_removal_failed(self, operation_id: UUID, reason: str) -> None:
        self.status = "failed"
        self.failure = reason
        self.failure_kind = "removal"
        self.operation_id = None

    @event("Removed")
    def mark_removed(self, operation_id: UUID) -> None:
        self.status = "removed"
        self.operation_id = None
