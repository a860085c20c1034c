"""Daily backup schedule: parsing, time zones, DST, missed days, never twice a day."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.errors import InvalidSchedule
from domain.schedule import DEFAULT, Schedule


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, local, expected", [
    ("3", "Europe/Paris", Schedule(3, 0, "Europe/Paris")),
    ("3", "America/New_York", Schedule(3, 0, "America/New_York")),
    ("4:00 UTC", "Europe/Paris", Schedule(4, 0, "UTC")),
    ("23:45 Asia/Tokyo", "UTC", Schedule(23, 45, "Asia/Tokyo")),
    (" 0:05  UTC ", "UTC", Schedule(0, 5, "UTC")),
])
def test_schedule_at(text, local, expected):
    assert Schedule.parse(text, local) == expected


@pytest.mark.parametrize("text, names", [
    ("", "an hour like 3"), ("25", "0 to 23"), ("4:60 UTC", "00 to 59"), ("four", "an hour like 3"),
    ("4:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"), ("4:0 UTC", "an hour like 3"),
])
def test_a_malformed_schedule_is_refused_naming_the_problem(text, names):
    with pytest.raises(InvalidSchedule, match=names):
        Schedule.parse(text, "UTC")


@pytest.mark.parametrize("text", [
    "٤:٠٠ UTC",  # Arabic-Indic digits
    "４:00 UTC",  # full-width digit
    "4:٠٠ UTC",
    "۳",  # Extended Arabic-Indic, an hour alone
    "४:30 Asia/Kolkata",  # Devanagari
    "𝟒:00 UTC",  # mathematical bold digit
    "1٢:00 UTC",
])
def test_only_ascii_digits_are_read_and_the_error_names_the_input(text):
    with pytest.raises(InvalidSchedule) as refused:
        Schedule.parse(text, "UTC")
    assert repr(text) in str(refused.value)
    assert "ASCII digits" in str(refused.value)


@pytest.mark.parametrize("text", ["4:00\u00a0UTC", "\u20034"])  # no-break space, em space
def test_only_ascii_spaces_separate_the_parts(text):
    with pytest.raises(InvalidSchedule, match="an hour like 3"):
        Schedule.parse(text, "UTC")


def test_the_default_is_about_one_in_the_morning_paris_time_winter_and_summer():
    assert DEFAULT.on(date(2026, 1, 15)) == utc(2026, 1, 15, 0, 0)  # CET, UTC+1
    assert DEFAULT.on(date(2026, 7, 15)) == utc(2026, 7, 14, 23, 0)  # CEST, UTC+2: 23:00 the day before


def test_the_reference_example_4_utc_reads_5_cet_in_winter_and_6_cest_in_summer():
    schedule = Schedule.parse("4:00 UTC", "Europe/Paris")
    assert schedule.describe(utc(2026, 12, 1)) == "5:00 CET"
    assert schedule.describe(utc(2026, 7, 1)) == "6:00 CEST"


def test_a_time_skipped_by_the_spring_change_moves_forward_with_the_clocks():
    # 29 March 2026 in Paris: 02:00 jumps to 03:00; 02:30 does not exist.
    assert Schedule(2, 30, "Europe/Paris").on(date(2026, 3, 29)) == utc(2026, 3, 29, 1, 30)


def test_a_time_that_happens_twice_in_autumn_is_the_first_one():
    # 25 October 2026 in Paris: 03:00 goes back to 02:00; 02:30 happens twice (CEST then CET).
    assert Schedule(2, 30, "Europe/Paris").on(date(2026, 10, 25)) == utc(2026, 10, 25, 0, 30)


def test_a_backup_is_due_once_its_time_has_come_and_never_twice_the_same_day():
    now = utc(2026, 12, 10, 0, 5)  # 01:05 in Paris
    assert DEFAULT.due_day(now, last_done=date(2026, 12, 9)) == date(2026, 12, 10)
    assert DEFAULT.due_day(now, last_done=date(2026, 12, 10)) is None
    before = utc(2026, 12, 9, 23, 30)  # 00:30 in Paris on the 10th: the 10th's time has not come
    assert DEFAULT.due_day(before, last_done=date(2026, 12, 9)) is None


def test_a_backup_missed_while_the_engine_was_down_runs_when_it_comes_back():
    back = utc(2026, 12, 12, 15, 0)  # down from the 9th to the 12th afternoon
    assert DEFAULT.due_day(back, last_done=date(2026, 12, 9)) == date(2026, 12, 12)
    assert DEFAULT.due_day(utc(2026, 12, 11, 23, 30), last_done=date(2026, 12, 9)) == date(2026, 12, 11)


def test_a_first_backup_is_due_for_the_latest_day_whose_time_has_come():
    assert DEFAULT.due_day(utc(2026, 12, 12, 15, 0), last_done=None) == date(2026, 12, 12)


def test_a_day_whose_time_came_before_the_addon_existed_was_never_missed():
    created = datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc)
    assert DEFAULT.due_day(created + timedelta(minutes=1), last_done=None, since=created) is None
    next_night = datetime(2026, 11, 29, 0, 30, tzinfo=timezone.utc)  # 1:30 in Paris
    assert DEFAULT.due_day(next_night, last_done=None, since=created) == date(2026, 11, 29)


def test_a_creation_stamped_by_a_clock_stepped_back_since_does_not_skip_that_day():
    """Stamped 0:40 UTC by a clock an hour fast; the clock stepped back, it reads 0:01 (1:01 in Paris, past
    the 1:00 backup): the addon was there at 1:00, so the day is due. Read by the same clock, it was not."""
    stamped = datetime(2026, 11, 28, 0, 40, tzinfo=timezone.utc)
    assert DEFAULT.due_day(stamped - timedelta(minutes=39), last_done=None, since=stamped) == date(2026, 11, 28)
    assert DEFAULT.due_day(stamped + timedelta(minutes=1), last_done=None, since=stamped) is None
    assert DEFAULT.due_day(stamped - timedelta(minutes=45), last_done=None, since=stamped) is None  # 0:55 in Paris
