"""The retention policy (reference, "Retention Policy for Daily Backups" and "for Manual Backups";
DESIGN §3): which backups of ONE addon are kept, and why. Pure: the clock is an argument.

A pre-upgrade backup (taken by an engine upgrade before it touches the node) is kept as a manual one is:
the plan's number of the most recent, counted apart, so that an upgrade never pushes a manual backup out.

Days, weeks and months are calendar ones in a time zone (the platform's by default), so a
backup at 00:30 on the night of a daylight saving change belongs to the day people see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

REASONS = ("daily", "weekly", "monthly", "manual", "pre-upgrade")  # the order in which a backup's reasons are given


@dataclass(frozen=True)
class Keep:
    daily_days: int
    weeks: int
    months: int
    manual: int


KEEP = {
    # A sandbox addon has no backups; should one exist anyway, nothing keeps it.
    "sandbox": Keep(daily_days=0, weeks=0, months=0, manual=0),
    "starter": Keep(daily_days=7, weeks=4, months=0, manual=10),
    "business": Keep(daily_days=7, weeks=8, months=12, manual=50),
}


@dataclass(frozen=True)
class BackupFacts:
    id: str
    kind: str  # "scheduled" | "manual" | "pre-upgrade"
    created_at: datetime  # aware
    status: str  # pending | running | done | failed
    day: date | None = None  # a scheduled backup's day: it may run after midnight, when the engine caught up


def day_of(backup: BackupFacts, tz: ZoneInfo) -> date:
    """The day a backup stands for: its schedule's day, else the day it was made."""
    return backup.day or local_day(backup.created_at, tz)


def decide(backups: Iterable[BackupFacts], tier: str, now: datetime,
           zone: str = "Europe/Paris") -> dict[str, tuple[str, ...]]:
    """Each finished backup with its reasons to be kept; `()` means it expires. A pending or running
    backup is left out: it is not a backup yet, so it neither counts nor goes; a failed one is left
    out for as long as a daily backup is kept (so that its reason can be read), then expires.

    Periods are counted back from `now`'s and have no upper bound: a backup dated after `now`
    (two hosts' clocks disagree) lands in the newest period and is kept, never deleted by mistake."""
    keep = rules_for(tier)
    tz = ZoneInfo(zone)
    backups = list(backups)
    today = local_day(now, tz)
    scheduled = [b for b in backups if b.status == "done" and b.kind == "scheduled"]
    manual = [b for b in backups if b.status == "done" and b.kind == "manual"]
    pre_upgrade = [b for b in backups if b.status == "done" and b.kind == "pre-upgrade"]
    # A failed backup stays listed (with its reason) as long as a daily one would, then expires.
    shown_until = today - timedelta(days=keep.daily_days - 1)
    failed_long_ago = [b for b in backups if b.status == "failed" and day_of(b, tz) < shown_until]
    kept: dict[str, set[str]] = {b.id: set() for b in scheduled + manual + pre_upgrade + failed_long_ago}
    for reason, chosen in (
        ("daily", latest_of_each_of_the_last_days(scheduled, keep.daily_days, today, tz)),
        ("weekly", earliest_of_each_of_the_last_weeks(scheduled, keep.weeks, today, tz)),
        ("monthly", earliest_of_each_of_the_last_months(scheduled, keep.months, today, tz)),
        ("manual", most_recent(manual, keep.manual)),
        ("pre-upgrade", most_recent(pre_upgrade, keep.manual)),
    ):
        for backup in chosen:
            kept[backup.id].add(reason)
    return {id_: tuple(r for r in REASONS if r in reasons) for id_, reasons in kept.items()}


def rules_for(tier: str) -> Keep:
    try:
        return KEEP[tier]
    except KeyError:
        raise ValueError(f"unknown tier {tier!r}: the retention policy knows {', '.join(KEEP)}") from None


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    if moment.tzinfo is None:
        # A naive time would be read in the server's own zone: a silent shift of a day at worst.
        raise ValueError(f"{moment.isoformat()} has no time zone: the retention policy needs aware times")
    return moment.astimezone(tz).date()


def latest_of_each_of_the_last_days(scheduled, days: int, today: date, tz: ZoneInfo) -> list[BackupFacts]:
    """"A daily backup is retained for the last 7 days": today and the 6 before, one each.
    The latest of a day, should there be several: the freshest data of that day."""
    return one_per_period(scheduled, days, tz, start_of=lambda d: d,
                          oldest=today - timedelta(days=days - 1), pick=max)


def earliest_of_each_of_the_last_weeks(scheduled, weeks: int, today: date, tz: ZoneInfo) -> list[BackupFacts]:
    """"Only one backup is saved over a 7 days period": ISO weeks, Monday first, this one included.
    The earliest of the week, so the choice never moves once made: a later backup of the same
    week cannot take its place and leave the week without one after the dailies expire."""
    monday = today - timedelta(days=today.weekday())
    return one_per_period(scheduled, weeks, tz, start_of=lambda d: d - timedelta(days=d.weekday()),
                          oldest=monday - timedelta(weeks=weeks - 1), pick=min)


def earliest_of_each_of_the_last_months(scheduled, months: int, today: date, tz: ZoneInfo) -> list[BackupFacts]:
    """"Only 1 backup is saved over the course of a month": calendar months, this one included.
    The earliest, for the same stability as the weekly one."""
    return one_per_period(scheduled, months, tz, start_of=lambda d: d.replace(day=1),
                          oldest=months_before(today.replace(day=1), months - 1), pick=min)


def most_recent(manual, count: int) -> list[BackupFacts]:
    """"The number of manual backups that you can retain is limited by your plan": the newest ones."""
    return sorted(manual, key=lambda b: (b.created_at, b.id), reverse=True)[:count]


def one_per_period(backups, periods: int, tz: ZoneInfo, start_of: Callable[[date], date], oldest: date,
                   pick: Callable) -> list[BackupFacts]:
    """The backup `pick`ed (min: earliest, max: latest) in each period from the `oldest` on."""
    if periods <= 0:
        return []
    by_period: dict[date, list[BackupFacts]] = {}
    for backup in backups:
        period = start_of(day_of(backup, tz))
        if period >= oldest:
            by_period.setdefault(period, []).append(backup)
    # The ID breaks a tie of equal times, so two sweeps never choose differently.
    return [pick(group, key=lambda b: (b.created_at, b.id)) for group in by_period.values()]


def months_before(first_of_month: date, months: int) -> date:
    year, month = divmod(first_of_month.year * 12 + first_of_month.month - 1 - months, 12)
    return date(year, month + 1, 1)
