"""An addon's maintenance window (domain/maintenance_window.py): a day of the week and an hour in a time
zone, open for an hour, following daylight saving time as the backup schedule does."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.maintenance_window import InvalidMaintenanceWindow, MaintenanceWindow


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# (window, now in UTC, when the window open then opened, in UTC, or None: closed)
DUE = [
    # Paris in winter is UTC+1: Sunday 3:00 there is 2:00 UTC, open for an hour.
    ("sunday 3:00 Europe/Paris", "2026-01-04 01:59", None),
    ("sunday 3:00 Europe/Paris", "2026-01-04 02:00", "2026-01-04 02:00"),
    ("sunday 3:00 Europe/Paris", "2026-01-04 02:59", "2026-01-04 02:00"),
    ("sunday 3:00 Europe/Paris", "2026-01-04 03:00", None),
    ("sunday 3:00 Europe/Paris", "2026-01-05 02:30", None),  # a Monday
    # In summer UTC+2: the same window opens an hour earlier in UTC.
    ("sunday 3:00 Europe/Paris", "2026-07-05 01:00", "2026-07-05 01:00"),
    ("sunday 3:00 Europe/Paris", "2026-07-05 02:00", None),
    # 29 March 2026, clocks go 2:00 -> 3:00 in Paris: 2:30 does not exist and moves forward with the clocks.
    ("sun 2:30 Europe/Paris", "2026-03-29 01:29", None),
    ("sun 2:30 Europe/Paris", "2026-03-29 01:30", "2026-03-29 01:30"),
    ("sun 2:30 Europe/Paris", "2026-03-29 02:29", "2026-03-29 01:30"),
    ("sun 2:30 Europe/Paris", "2026-03-29 02:30", None),
    # 25 October 2026, clocks go 3:00 -> 2:00: 2:30 happens twice and the window opens at the first.
    ("sun 2:30 Europe/Paris", "2026-10-25 00:30", "2026-10-25 00:30"),
    ("sun 2:30 Europe/Paris", "2026-10-25 01:45", None),  # 2:45 again, in winter time
    # Tuesday 22:30 in New York (UTC-5) is Wednesday 3:30 UTC.
    ("tue 22:30 America/New_York", "2026-12-02 03:45", "2026-12-02 03:30"),
    ("tue 22:30 America/New_York", "2026-12-01 22:45", None),
    # Across midnight, and a half-hour zone (Kolkata, UTC+5:30: Friday 4:00 is Thursday 22:30 UTC).
    ("sat 23:30 UTC", "2026-12-06 00:15", "2026-12-05 23:30"),
    ("fri 4 Asia/Kolkata", "2026-12-03 22:45", "2026-12-03 22:30"),
    ("fri 4 Asia/Kolkata", "2026-12-04 04:15", None),  # Friday 4:15 UTC: 9:45 there
]


@pytest.mark.parametrize("text, now, opened", DUE, ids=[f"{w} at {n}" for w, n, _ in DUE])
def test_whether_the_window_is_open(text, now, opened):
    window = MaintenanceWindow.parse(text, "UTC")
    assert window.open_since(utc(now)) == (utc(opened) if opened else None)


def test_the_next_opening_follows_the_clocks():
    window = MaintenanceWindow.parse("sun 3:00 Europe/Paris", "UTC")
    assert window.next_opening(utc("2026-03-28 12:00")) == utc("2026-03-29 01:00")  # CEST from that night
    assert window.next_opening(utc("2026-03-29 01:00")) == utc("2026-04-05 01:00")  # open now: the next one


PARSED = [
    ("sunday 3", (6, 3, 0, "Europe/Paris")),  # the CLI machine's zone
    ("Sun 4:00 UTC", (6, 4, 0, "UTC")),
    ("  tue 22:30   America/New_York ", (1, 22, 30, "America/New_York")),
    ("MONDAY 0:05 Asia/Tokyo", (0, 0, 5, "Asia/Tokyo")),
]


@pytest.mark.parametrize("text, expected", PARSED)
def test_a_window_is_a_day_an_hour_and_a_zone(text, expected):
    window = MaintenanceWindow.parse(text, "Europe/Paris")
    assert (window.day, window.hour, window.minute, window.zone) == expected


REFUSED = [
    ("3:00 UTC", "use a day and an hour"),
    ("funday 3", "unknown day 'funday'"),
    ("s 3", "unknown day 's'"),  # saturday or sunday
    ("sun 24", "the hour is 0 to 23"),
    ("sun 3:60", "the minutes 00 to 59"),
    ("sun 3 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("sun ٣", "use a day and an hour"),  # digits of another script
    ("", "use a day and an hour"),
]


@pytest.mark.parametrize("text, why", REFUSED)
def test_a_window_that_cannot_be_read_is_refused_saying_why(text, why):
    with pytest.raises(InvalidMaintenanceWindow, match=why) as refused:
        MaintenanceWindow.parse(text, "UTC")
    assert refused.value.rule == "invalid-maintenance-window" and refused.value.status == 400
