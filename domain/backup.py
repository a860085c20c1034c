"""The Backup aggregate: one archive of an addon's data, and the retention decisions about it."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate, event

from domain.errors import BackupNotDone, NoBackupsOnSandbox


def archive_name(created_at: datetime, addon: str) -> str:
    """Reference: `20231207000608_my_app_4553.tar.gz`."""
    return f"{created_at:%Y%m%d%H%M%S}_{addon.replace('-', '_')}.tar.gz"


class Backup(Aggregate):
    """pending -> running -> done | failed; then kept for reasons, or expired and deleted."""

    @classmethod
    def request(cls, addon: str, app: str, tier: str, kind: str, requested_at: datetime) -> Backup:
        if tier == "sandbox":
            raise NoBackupsOnSandbox(f"addon {addon} is on a sandbox plan, which has no backups: choose a paid plan first")
        if kind not in ("scheduled", "manual"):
            raise ValueError(f"a backup is scheduled or manual, not {kind!r}")
        return cls(addon=addon, app=app, tier=tier, kind=kind, requested_at=requested_at)

    @event("Requested")
    def __init__(self, addon: str, app: str, tier: str, kind: str, requested_at: datetime):
        self.addon, self.app, self.tier, self.kind = addon, app, tier, kind
        self.created_at = requested_at
        self.name = archive_name(requested_at, addon)
        self.status = "pending"
        self.size: int | None = None
        self.sha256: str | None = None
        self.location: str | None = None
        self.failure: str | None = None
        self.kept_for: tuple[str, ...] = ()
        self.expired = False
        self.deleted = False

    @event("Started")
    def mark_started(self) -> None:
        self.status = "running"

    @event("Finished")
    def mark_done(self, size: int, sha256: str, location: str) -> None:
        self.status, self.size, self.sha256, self.location = "done", size, sha256, location

    @event("Failed")
    def mark_failed(self, reason: str) -> None:
        self.status, self.failure = "failed", reason

    def check_downloadable(self) -> None:
        if self.status != "done" or self.deleted:
            state = "deleted by the retention policy" if self.deleted else self.status
            raise BackupNotDone(f"backup {self.id} is {state}: only a finished backup can be downloaded or restored")

    def decide_retention(self, reasons: tuple[str, ...]) -> None:
        """Record the policy's decision, only when it changes (a sweep repeats itself often)."""
        reasons = tuple(reasons)
        if self.deleted:
            return
        if reasons and reasons != self.kept_for:
            self._kept(reasons=reasons)
        elif not reasons and not self.expired:
            self._expired()

    @event("Kept")
    def _kept(self, reasons: tuple[str, ...]) -> None:
        self.kept_for = tuple(reasons)
        self.expired = False

    @event("Expired")
    def _expired(self) -> None:
        """Its archive goes at the next sweep."""
        self.kept_for = ()
        self.expired = True

    @event("Deleted")
    def mark_deleted(self) -> None:
        """The sweep removed the archive of an expired backup."""
        self.deleted = True
