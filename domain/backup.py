"""The Backup aggregate: one archive of an addon's data, and the retention decisions about it."""

from __future__ import annotations

from datetime import date, datetime
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import BackupNotDone, NoBackupsOnSandbox


def archive_name(created_at: datetime, addon: str) -> str:
    """Reference: `20231207000608_my_app_4553.tar.gz`."""
    return f"{created_at:%Y%m%d%H%M%S}_{addon.replace('-', '_')}.tar.gz"


# scheduled: the addon's daily one; manual: asked for; pre-upgrade: taken by an engine upgrade before it
# touches the node (retention keeps these as it keeps manual ones, in a count of their own).
KINDS = ("scheduled", "manual", "pre-upgrade")


class Backup(Aggregate):
    """pending -> running -> done | failed; then kept for reasons, or expired and deleted."""

    @staticmethod
    def create_id(addon: str, kind: str, day: str | None = None, operation_id: str | None = None, attempt: int = 1,
                  **_) -> UUID:
        """A scheduled backup's ID is its addon, day and attempt: the event store refuses a second one for the
        same day and attempt (an attempt is made only once each before it failed, so a day has one done at
        most). A pre-upgrade backup's is its upgrade's: the upgrade's step, run again after a crash, finds it."""
        if kind == "scheduled":
            return Backup.scheduled_id(addon, day, attempt)
        return Backup.pre_upgrade_id(operation_id) if kind == "pre-upgrade" else uuid4()

    @staticmethod
    def scheduled_id(addon: str, day: str | date, attempt: int = 1) -> UUID:
        again = f"/attempt-{attempt}" if attempt > 1 else ""  # the first keeps the ID days had before retries
        return uuid5(NAMESPACE_URL, f"redis-addons:/addons/{addon}/backups/scheduled/{day}{again}")

    @staticmethod
    def pre_upgrade_id(operation_id: str | UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/operations/{operation_id}/pre-upgrade-backup")

    @classmethod
    def request(cls, addon: str, app: str, tier: str, kind: str, requested_at: datetime,
                day: date | None = None, redis_version: str | None = None,
                operation_id: str | UUID | None = None, attempt: int = 1) -> Backup:
        """A scheduled backup is for one `day` (of the addon's schedule), its `attempt` the how-manieth of
        that day (the ones before failed); a pre-upgrade one for the upgrade `operation_id` that takes it;
        a manual one for neither."""
        if tier == "sandbox":
            raise NoBackupsOnSandbox(f"addon {addon} is on a sandbox plan, which has no backups: choose a paid plan first")
        if kind not in KINDS:
            raise ValueError(f"a backup is {', '.join(KINDS[:-1])} or {KINDS[-1]}, not {kind!r}")
        if (kind == "scheduled") != (day is not None):
            raise ValueError("a scheduled backup is for a day, the others are not")
        if (kind == "pre-upgrade") != (operation_id is not None):
            raise ValueError("a pre-upgrade backup is for an upgrade operation, the others are not")
        return cls(addon=addon, app=app, tier=tier, kind=kind, requested_at=requested_at,
                   day=day.isoformat() if day else None, redis_version=redis_version,
                   operation_id=str(operation_id) if operation_id else None, **({"attempt": attempt} if attempt > 1 else {}))

    @event("Requested")
    def __init__(self, addon: str, app: str, tier: str, kind: str, requested_at: datetime, day: str | None = None,
                 redis_version: str | None = None, operation_id: str | None = None, attempt: int = 1):
        self.addon, self.app, self.tier, self.kind = addon, app, tier, kind
        self.attempt = attempt  # a scheduled backup's: 1, or more when the ones of its day before failed
        self.day, self.redis_version = day, redis_version
        self.operation_id = operation_id  # a pre-upgrade backup's upgrade (None in events recorded before)
        self.created_at = requested_at
        self.snapshot: dict = {}
        self.taken_on: dict | None = None
        self.name = self.archive_name_for(requested_at, addon)
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
    def mark_done(self, size: int, sha256: str, location: str, snapshot: dict | None = None,
                  taken_on: dict | None = None) -> None:
        """`snapshot`: the keys and expiring keys per database at the moment of the save. `taken_on`, for a
        Business addon's: the node it was taken on, its role, and on a replica the replication offset its
        file records and the primary's as the save began; on the primary, the note saying why (None for a
        single node's, and in events recorded before it was)."""
        self.status, self.size, self.sha256, self.location = "done", size, sha256, location
        self.snapshot = dict(snapshot or {})
        self.taken_on = dict(taken_on) if taken_on else None

    @event("Failed")
    def mark_failed(self, reason: str) -> None:
        self.status, self.failure = "failed", reason

    @staticmethod
    def archive_name_for(created_at: datetime, addon: str) -> str:
        return archive_name(created_at, addon)

    @property
    def archive_key(self) -> str:
        """Where the backup store keeps it: under its addon and its own ID (two backups may share a second)."""
        return f"{self.addon}/{self.id}/{self.name}"

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
