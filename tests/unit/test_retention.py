"""The retention policy, in the reference's words: how many daily, weekly, monthly and manual
backups each plan keeps, and which ones."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.retention import BackupFacts, decide

PARIS = ZoneInfo("Europe/Paris")


def paris(y, m, d, hour=1, minute=0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=PARIS)


def scheduled(moment: datetime, status="done") -> BackupFacts:
    return BackupFacts(id=f"s-{moment.isoformat()}", kind="scheduled", created_at=moment, status=status)


def manual(moment: datetime, status="done") -> BackupFacts:
    return BackupFacts(id=f"m-{moment.isoformat()}", kind="manual", created_at=moment, status=status)


def every_day(first: date, last: date, hour=1) -> list[BackupFacts]:
    """One scheduled backup a day at `hour` Paris time, as the default schedule makes them."""
    return [scheduled(paris(d.year, d.month, d.day, hour)) for d in days(first, last)]


def days(first: date, last: date):
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def counts(decisions) -> Counter:
    return Counter(reason for reasons in decisions.values() for reason in reasons)


# 2024 is a leap year and crosses both changes of time; 31 December 2024 is a Tuesday.
A_YEAR = every_day(date(2024, 1, 1), date(2024, 12, 31))
NEW_YEARS_EVE = paris(2024, 12, 31, 12)


@pytest.mark.parametrize("tier, daily, weekly, monthly, kept", [
    # Starter: the 7 days, and the 4 weeks' Mondays, one of which (30 Dec) is also a daily one: 7 + 3.
    ("starter", 7, 4, 0, 10),
    # Business: and 8 weeks, and the 1st of each of the 12 months (none of them a kept Monday): 7 + 7 + 12.
    ("business", 7, 8, 12, 26),
])
def test_after_a_year_of_daily_backups_each_plan_keeps_its_count(tier, daily, weekly, monthly, kept):
    decisions = decide(A_YEAR, tier, NEW_YEARS_EVE)
    assert len(decisions) == 366
    assert [counts(decisions)[reason] for reason in ("daily", "weekly", "monthly", "manual")] == [daily, weekly, monthly, 0]
    assert sum(1 for reasons in decisions.values() if reasons) == kept


def test_which_scheduled_backups_a_business_addon_keeps_at_the_end_of_the_year():
    decisions = decide(A_YEAR, "business", NEW_YEARS_EVE)
    kept = {b.created_at.date(): decisions[b.id] for b in A_YEAR if decisions[b.id]}
    assert [d for d, r in kept.items() if "daily" in r] == list(days(date(2024, 12, 25), date(2024, 12, 31)))
    assert [d for d, r in kept.items() if "weekly" in r] == [date(2024, 11, 11) + timedelta(weeks=n) for n in range(8)]
    assert [d for d, r in kept.items() if "monthly" in r] == [date(2024, m, 1) for m in range(1, 13)]


@pytest.mark.parametrize("tier, kept", [("starter", 10), ("business", 50)])
def test_sixty_manual_backups_keep_the_latest_ones_of_the_plan(tier, kept):
    backups = [manual(paris(2024, 1, 1, 9) + timedelta(days=n, minutes=n)) for n in range(60)]
    decisions = decide(backups, tier, paris(2024, 3, 15, 12))
    assert [decisions[b.id] for b in backups] == [()] * (60 - kept) + [("manual",)] * kept


def test_a_failed_backup_keeps_no_place_stays_listed_a_week_then_expires():
    today, yesterday = paris(2024, 5, 10), paris(2024, 5, 9)
    backups = [scheduled(yesterday), scheduled(today, status="failed"), manual(today + timedelta(hours=5), "failed")]
    decisions = decide(backups, "business", paris(2024, 5, 10, 12))
    # Yesterday's becomes the week's and month's choice; today simply has no daily backup.
    assert decisions == {backups[0].id: ("daily", "weekly", "monthly")}
    a_week_later = decide(backups, "business", paris(2024, 5, 17, 12))
    assert a_week_later[backups[1].id] == () and a_week_later[backups[2].id] == ()


def test_a_backup_still_in_progress_is_not_decided_and_takes_no_place():
    done = [manual(paris(2024, 5, 1, 9) + timedelta(hours=n)) for n in range(10)]
    running, pending = manual(paris(2024, 5, 2, 9), "running"), scheduled(paris(2024, 5, 3), "pending")
    decisions = decide([*done, running, pending], "starter", paris(2024, 5, 3, 12))
    assert running.id not in decisions and pending.id not in decisions
    assert all(decisions[b.id] == ("manual",) for b in done)


@pytest.mark.parametrize("created_at, now, kept_as_daily", [
    # Spring forward (31 March 2024): 00:30 Paris is still 23:30 UTC on the 30th.
    (datetime(2024, 3, 30, 23, 30, tzinfo=timezone.utc), paris(2024, 4, 6, 12), True),
    (datetime(2024, 3, 30, 22, 30, tzinfo=timezone.utc), paris(2024, 4, 6, 12), False),  # 23:30 on the 30th
    # Fall back (27 October 2024): 00:30 Paris is 22:30 UTC on the 26th, at +02:00.
    (datetime(2024, 10, 26, 22, 30, tzinfo=timezone.utc), paris(2024, 11, 2, 12), True),
    (datetime(2024, 10, 26, 21, 30, tzinfo=timezone.utc), paris(2024, 11, 2, 12), False),  # 23:30 on the 26th
    # Seen the other way round: at 00:15 on 3 November it is still 2 November in UTC, whose 7 days
    # would wrongly hold 27 October, 23:30 Paris.
    (datetime(2024, 10, 27, 22, 30, tzinfo=timezone.utc), paris(2024, 11, 3, 0, 15), False),
])
def test_a_backup_belongs_to_its_local_day_across_a_change_of_time(created_at, now, kept_as_daily):
    backup = scheduled(created_at)
    assert ("daily" in decide([backup], "starter", now)[backup.id]) is kept_as_daily


def test_the_weekly_choice_does_not_move_from_one_day_to_the_next():
    """Even with two backups a day, the later one never takes the week's place."""
    backups, chosen = [], {}
    for day in days(date(2024, 9, 1), date(2024, 12, 31)):
        backups += [scheduled(paris(day.year, day.month, day.day, 1)), scheduled(paris(day.year, day.month, day.day, 13))]
        decisions = decide(backups, "starter", paris(day.year, day.month, day.day, 23))
        weekly = {b.created_at.date() - timedelta(days=b.created_at.weekday()): b.id
                  for b in backups if "weekly" in decisions[b.id]}
        for week, backup in weekly.items():
            assert chosen.setdefault(week, backup) == backup, f"the week of {week} changed its mind on {day}"
        assert len(weekly) == min(4, len(chosen))


@pytest.mark.parametrize("day, today, reasons", [
    (date(2024, 7, 1), date(2024, 7, 1), ("daily", "weekly", "monthly")),  # a Monday, the 1st, today
    (date(2024, 7, 8), date(2024, 7, 9), ("daily", "weekly")),  # yesterday, a Monday
    (date(2024, 7, 3), date(2024, 7, 9), ("daily",)),  # the oldest of the 7 days
    (date(2024, 7, 2), date(2024, 7, 9), ()),
    (date(2024, 7, 1), date(2024, 7, 9), ("weekly", "monthly")),
    (date(2024, 6, 17), date(2024, 7, 9), ("weekly",)),
    (date(2024, 6, 1), date(2024, 7, 9), ("monthly",)),  # a Saturday: its week began in May
    (date(2024, 5, 15), date(2024, 7, 9), ("monthly",)),  # the first of all; its week is 9 weeks ago
])
def test_a_backup_kept_for_several_reasons_has_them_all_in_order(day, today, reasons):
    backups = every_day(date(2024, 5, 15), today)
    decisions = decide(backups, "business", paris(today.year, today.month, today.day, 12))
    assert decisions[scheduled(paris(day.year, day.month, day.day)).id] == reasons


def test_a_sandbox_addon_keeps_nothing():
    backups = [*A_YEAR[-10:], manual(paris(2024, 12, 30, 10))]
    assert set(decide(backups, "sandbox", NEW_YEARS_EVE).values()) == {()}


def test_an_unknown_tier_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown tier 'enterprise'"):
        decide(A_YEAR, "enterprise", NEW_YEARS_EVE)


def test_a_time_without_zone_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        decide(A_YEAR, "starter", datetime(2024, 12, 31, 12))


def test_a_backup_dated_after_now_is_kept_not_deleted():
    """Two hosts' clocks may disagree by a few minutes: such a backup lands in today's period."""
    tomorrow = scheduled(paris(2025, 1, 1))
    assert decide([*A_YEAR, tomorrow], "starter", NEW_YEARS_EVE)[tomorrow.id] == ("daily",)


def test_a_scheduled_backup_made_late_after_downtime_stands_for_its_own_day():
    # The 5th's backup ran at 00:30 on the 6th (the engine was down at 1:00); the 6th's ran on time.
    late = BackupFacts(id="s-late", kind="scheduled", created_at=paris(2024, 5, 6, 0, 30), status="done",
                       day=date(2024, 5, 5))
    on_time = scheduled(paris(2024, 5, 6))
    decisions = decide([late, on_time], "starter", paris(2024, 5, 6, 12))
    assert decisions[late.id] == ("daily", "weekly") and decisions[on_time.id] == ("daily", "weekly")
