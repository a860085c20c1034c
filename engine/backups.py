"""Backups of an addon (reference, "Backups"): made on demand or by the schedule, listed,
downloaded, restored; and the retention policy's decisions, applied by a sweep.

`addon` arguments take an addon ID or the provider name (`redis`) when the app has one Redis addon.
Backups of a removed addon stay listed and downloadable, under the same retention policy.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from typing import AsyncIterator
from uuid import UUID

import structlog

from domain.addon import Addon
from domain.names import check_app_name
from domain.backup import Backup
from domain.errors import AddonBusy, AddonNotRunning, UnknownBackup
from domain.operation import Operation
from domain.retention import BackupFacts, decide
from domain.schedule import PLATFORM_ZONE, Schedule
from domain.catalog import PlanCatalog, VersionCatalog
from engine.addon_lookup import AddonLookup
from engine.follower import Follower
from engine.inventory import Inventory
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.ports import BackupStore, ReadModels
from engine.restore_requests import RestoreRequests
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("backups")

ATTEMPTS_A_DAY = 3  # a scheduled backup that failed is tried again, at most this many times in all
RETRY_AFTER = timedelta(minutes=10)  # after the failed attempt was asked for: a short fault has passed


class DayBackedUp(Exception):
    """A scheduled backup's ID is its day: the store holds one already."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class BackupService:
    def __init__(self, events: EventLog, views: ReadModels, plans: PlanCatalog, versions: VersionCatalog,
                 lookup: AddonLookup, starter: OperationStarter, follower: Follower, inventory: Inventory,
                 store: BackupStore, clock=utc_now, placing: Placing | None = None):
        self.events, self.views, self.plans, self.versions = events, views, plans, versions
        self.lookup, self.starter, self.follower, self.inventory = lookup, starter, follower, inventory
        self.store, self.clock = store, clock
        self.placing = placing  # where a Business addon's restore places its new nodes

    # -- commands ---------------------------------------------------------------

    async def create(self, app: str, addon: str) -> dict:
        """A manual backup; its saga runs in the background."""
        return await self._start(await self._live_addon(app, addon), "manual", self.clock())

    async def _start(self, addon: Addon, kind: str, at: datetime, day: date | None = None, attempt: int = 1) -> dict:
        """A Business addon's too: its backup is taken on a replica in sync (engine/backup_source.py)."""
        tier = self.plans.get(addon.plan).tier
        backup = Backup.request(addon=addon.name, app=addon.app, tier=tier, kind=kind, requested_at=at, day=day,
                                redis_version=addon.redis_version, attempt=attempt)
        operation = Operation(kind="backup", addon=addon.name, app=addon.app, subject=str(backup.id))
        addon.start_backup(operation.id, backup.id)
        backup.mark_started()
        if kind == "scheduled" and await self.events.exists(backup.id):
            raise DayBackedUp(f"the backup of {day} for addon {addon.name} exists already")
        await self.starter.start(operation, addon, backup)
        log.info("backup started", addon=addon.name, kind=kind, backup_id=str(backup.id), operation_id=str(operation.id))
        return {"addon": addon.name, "backup_id": str(backup.id), "operation_id": str(operation.id)}

    async def restore(self, app: str, addon: str, backup_id: str) -> dict:
        """The backup's data into the addon: a backup of this addon, or of any other of this installation
        (engine/restore_requests.py); the answer names the addon and app it was made of."""
        current = await self._live_addon(app, addon)
        started = await RestoreRequests(self.events, self.plans, self.versions, self.starter, self.placing).request(
            current, backup_id)
        log.info("restore requested", **started)
        return started

    async def set_schedule(self, app: str, addon: str, schedule_at: str, local_zone: str) -> dict:
        current = await self._addon(app, await self._addon_name(app, addon))
        schedule = Schedule.parse(schedule_at, local_zone)
        current.schedule_backups(schedule, self.plans.get(current.plan).tier)
        await self._save(current)
        return self._describe(schedule)

    async def _save(self, *aggregates) -> None:
        try:
            recordings = await self.events.save(*aggregates)
        except IntegrityError:  # another command changed the addon meanwhile (optimistic concurrency)
            raise AddonBusy(f"addon {aggregates[0].name} changed while this was asked: try again") from None
        if recordings:
            await self.follower.wait_until(recordings[-1].notification.id)

    # -- queries ----------------------------------------------------------------

    async def schedule(self, app: str, addon: str) -> dict:
        return self._describe((await self._addon(app, await self._addon_name(app, addon))).backup_schedule)

    def _describe(self, schedule: Schedule) -> dict:
        return {"hour": schedule.hour, "minute": schedule.minute, "zone": schedule.zone,
                "description": f"daily at {schedule.describe(self.clock(), PLATFORM_ZONE)}"}

    async def list(self, app: str, addon: str) -> list[dict]:
        name = await self._addon_name(app, addon, allow_removed=True)
        return await asyncio.to_thread(self.views.backups, name)

    async def get(self, app: str, addon: str, backup_id: str) -> dict:
        name = await self._addon_name(app, addon, allow_removed=True)
        row = await asyncio.to_thread(self.views.backup, self._uuid(backup_id))
        if row is None or row["addon"] != name:
            raise UnknownBackup(f"addon {name} has no backup {backup_id!r} (see `backups` for the IDs)")
        return row

    async def row(self, backup_id: str) -> dict:
        """A backup by its ID alone, of whichever addon (a restore's answer names one of another addon)."""
        row = await asyncio.to_thread(self.views.backup, self._uuid(backup_id))
        if row is None:
            raise UnknownBackup(f"there is no backup {backup_id!r}")
        return row

    async def latest_done(self, app: str, addon: str) -> dict:
        rows = [r for r in await self.list(app, addon) if r["status"] == "done"]
        if not rows:
            raise UnknownBackup(f"addon {addon} has no successful backup yet: make one with `backups-create`")
        return rows[0]

    async def downloadable(self, app: str, addon: str, backup_id: str) -> dict:
        row = await self.get(app, addon, backup_id)
        (await self.events.get(UUID(row["id"]))).check_downloadable()
        return row

    def read_archive(self, row: dict, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        # The record goes along: an archive that is not the one recorded is refused before any of it is sent.
        return self.store.read(row["location"], start, end, recorded=(row["size"], row["sha256"]))

    # -- the schedule and the retention policy (driven by engine.scheduler) ------------

    async def run_due_backups(self, now: datetime) -> list[dict]:
        """Start each running addon's scheduled backup whose day has come. A busy addon is tried again
        at the next tick; a day already backed up is refused by the event store (its ID is the day).
        A Business addon running degraded (no replica in sync) is backed up too: on its primary."""
        started = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] not in ("running", "degraded") or self.plans.get(row["plan"]).tier == "sandbox":
                continue  # no backups on sandbox
            last = await asyncio.to_thread(self.views.last_scheduled_day, row["name"])
            addon: Addon = await self.events.get(Addon.id_for(row["name"]))
            day = addon.backup_schedule.due_day(now, None, since=datetime.fromisoformat(row["created_at"]))
            if day is None or (last and day < date.fromisoformat(last)):  # a later day's made (a clock stepped back)
                continue
            attempt = await asyncio.to_thread(self._attempt, row["name"], day, now)
            if attempt is None:
                continue
            try:
                started.append(await self._start(addon, "scheduled", now, day, attempt))
            except (AddonBusy, AddonNotRunning) as e:
                log.info("scheduled backup waits for the addon", addon=row["name"], day=str(day), reason=str(e))
            except DayBackedUp:
                pass  # made meanwhile (the read model lagged, or another process made it)
        return started

    def _attempt(self, addon: str, day: date, now: datetime) -> int | None:
        """The attempt at `day`'s backup to start now: the first; or, every one made so far failed (a host's
        engine or a disk away for a moment must not lose the day), the next one RETRY_AFTER after the last, up
        to ATTEMPTS_A_DAY. None while one runs or is done. Each attempt has an ID of its own (Backup.create_id),
        so a second process starting the same one is refused by the event store."""
        for attempt in range(1, ATTEMPTS_A_DAY + 1):
            row = self.views.backup(str(Backup.scheduled_id(addon, day, attempt)))
            if row is None:
                return attempt
            if row["status"] != "failed" or now < datetime.fromisoformat(row["created_at"]) + RETRY_AFTER:
                return None
        return None

    async def sweep(self, now: datetime) -> dict:
        """Apply the retention policy: record each decision that changed, delete expired archives."""
        counts = {"decided": 0, "deleted": 0}
        for name in await asyncio.to_thread(self.views.addons_with_backups):
            rows = await asyncio.to_thread(self.views.backups, name)
            facts = [BackupFacts(id=r["id"], kind=r["kind"], created_at=datetime.fromisoformat(r["created_at"]),
                                 status=r["status"], day=date.fromisoformat(r["day"]) if r["day"] else None)
                     for r in rows]
            decisions = decide(facts, rows[0]["tier"], now)  # the tier of its latest backup: a removed addon's too
            in_use = self.inventory.subjects_of_unfinished_operations()
            for row in rows:
                reasons = decisions.get(row["id"])
                if row["id"] in in_use and not reasons:
                    continue  # being restored: it expires at a sweep after the restore
                if reasons is None or (tuple(row["kept_for"]) == tuple(reasons) and reasons):
                    continue
                await self._apply_decision(UUID(row["id"]), tuple(reasons))
                counts["decided"] += 1
                counts["deleted"] += not reasons
        if counts["decided"]:  # read your writes: the listing shows the decisions on return
            await self.follower.wait_until(await self.events.max_position())
        return counts

    async def _apply_decision(self, backup_id: UUID, reasons: tuple[str, ...]) -> None:
        backup: Backup = await self.events.get(backup_id)
        backup.decide_retention(reasons)
        if backup.expired and not backup.deleted:
            await self.store.delete(backup.archive_key)  # before the event: a crash here deletes again, harmlessly
            backup.mark_deleted()
        await self.events.save(backup)

    # -- finding things -----------------------------------------------------------

    async def _addon_name(self, app: str, ref: str, allow_removed: bool = False) -> str:
        return await self.lookup.named(app, ref, allow_removed)

    async def _addon(self, app: str, name: str) -> Addon:
        return await self.lookup.of(check_app_name(app), name)

    async def _live_addon(self, app: str, ref: str) -> Addon:
        return await self._addon(app, await self._addon_name(app, ref))

    @staticmethod
    def _uuid(text: str) -> str:
        try:
            return str(UUID(str(text)))
        except ValueError:
            raise UnknownBackup(f"unknown backup {text!r}: a backup ID looks like 9f1c2e4a-… (see `backups`)") from None
