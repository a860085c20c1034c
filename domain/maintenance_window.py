"""When an addon's maintenance may run: a weekly window of an hour, opening on a day of the week at an hour
(and minute) in a time zone, as managed services let their users choose one. Stored as such, not as an
offset, so the window follows daylight saving time as the backup schedule does (domain/schedule.py).

The scheduler moves an addon running an outdated build onto its version's current build only while its
window is open: a window missed (the engine was down the whole hour) waits for the next week."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import DomainError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LENGTH = timedelta(hours=1)
# re.ASCII: digits of other scripts are refused, as for the backup schedule.
WINDOW_AT = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,2})(?::(\d{2}))?(?:\s+(\S+))?\s*$", re.ASCII)


class InvalidMaintenanceWindow(DomainError):
    rule = "invalid-maintenance-window"
    status = 400


def day_named(text: str) -> int:
    """0 (Monday) to 6 (Sunday), from the day's name or its first three letters or more."""
    word = text.lower()
    found = [i for i, day in enumerate(DAYS) if len(word) >= 3 and day.startswith(word)]
    if len(found) != 1:
        raise InvalidMaintenanceWindow(f"unknown day {text!r}: name a day of the week, like sunday or sun")
    return found[0]


@dataclass(frozen=True)
class MaintenanceWindow:
    day: int  # 0 = Monday, as date.weekday()
    hour: int
    minute: int
    zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @classmethod
    def parse(cls, text: str, local_zone: str) -> MaintenanceWindow:
        """`"sunday 3"` (in `local_zone`, the CLI machine's), `"sun 4:00 UTC"`, `"Tue 22:30 America/New_York"`."""
        match = WINDOW_AT.fullmatch(text or "")
        if not match:
            raise InvalidMaintenanceWindow(f"invalid maintenance window {text!r}: use a day and an hour, like "
                                           "\"sunday 3\" or \"sun 4:00 UTC\"")
        day, hour, minute, zone = day_named(match[1]), int(match[2]), int(match[3] or 0), match[4] or local_zone
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise InvalidMaintenanceWindow(f"invalid maintenance window {text!r}: the hour is 0 to 23 and the "
                                           "minutes 00 to 59")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidMaintenanceWindow(f"invalid maintenance window {text!r}: unknown time zone {zone!r} (use a "
                                           "name like UTC or Europe/Paris)") from None
        return cls(day, hour, minute, zone)

    def opening_on(self, day: date) -> datetime:
        """When the window opens on `day` (UTC). A time skipped by a DST change moves forward with the
        clocks; a time that happens twice is the first one (fold=0, as the backup schedule)."""
        return datetime.combine(day, time(self.hour, self.minute), self.tz).astimezone(timezone.utc)

    def last_opening(self, now: datetime) -> datetime:
        """The latest opening at or before `now`."""
        local = now.astimezone(self.tz).date()
        day = local - timedelta(days=(local.weekday() - self.day) % 7)
        opening = self.opening_on(day)
        return opening if opening <= now else self.opening_on(day - timedelta(days=7))

    def open_since(self, now: datetime) -> datetime | None:
        """When the window open at `now` opened; None when it is closed."""
        opening = self.last_opening(now)
        return opening if now < opening + LENGTH else None

    def next_opening(self, now: datetime) -> datetime:
        return self.opening_on(self.last_opening(now).astimezone(self.tz).date() + timedelta(days=7))

    def describe(self) -> str:
        return f"{DAYS[self.day]}s at {self.hour}:{self.minute:02d} {self.zone}, for an hour"

    def as_dict(self) -> dict:
        return {"day": DAYS[self.day], "hour": self.hour, "minute": self.minute, "zone": self.zone}
