"""When daily backups run: an hour (and minute) in a time zone, stored as such, not as an offset,
so the schedule follows daylight saving time (reference: "at around 1:00 AM Central European Time")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidSchedule

PLATFORM_ZONE = "Europe/Paris"
CLOCK_STEP = timedelta(hours=1)  # how far two readings of "now" may disagree (a clock stepped back or forward)
# re.ASCII: without it \d also takes other scripts' digits ("٤:٠٠", full-width "４:00"), which
# int() reads as 4 without a word; a schedule is written in ASCII digits or refused.
SCHEDULE_AT = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?(?:\s+(\S+))?\s*$", re.ASCII)


@dataclass(frozen=True)
class Schedule:
    hour: int
    minute: int
    zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @classmethod
    def parse(cls, text: str, local_zone: str) -> Schedule:
        """`3` (in `local_zone`, the CLI machine's) or `"4:00 UTC"` / `"4:30 America/New_York"`."""
        match = SCHEDULE_AT.fullmatch(text or "")
        if not match and any(c.isdigit() and not c.isascii() for c in text or ""):
            raise InvalidSchedule(f"invalid schedule {text!r}: write the hour and minutes in ASCII digits 0-9, "
                                  "like 3 or \"4:00 UTC\"")
        if not match:
            raise InvalidSchedule(f"invalid schedule {text!r}: use an hour like 3, or \"H:MM ZONE\" like \"4:00 UTC\"")
        hour, minute, zone = int(match[1]), int(match[2] or 0), match[3] or local_zone
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise InvalidSchedule(f"invalid schedule {text!r}: the hour is 0 to 23 and the minutes 00 to 59")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(f"invalid schedule {text!r}: unknown time zone {zone!r} (use a name like UTC or Europe/Paris)") from None
        return cls(hour, minute, zone)

    def on(self, day: date) -> datetime:
        """The moment (UTC) of `day`'s backup. A time skipped by a DST change moves forward
        with the clocks; a time that happens twice is the first one."""
        # fold=0 (PEP 495) gives both: a skipped time takes the offset from before the change.
        return datetime.combine(day, time(self.hour, self.minute), self.tz).astimezone(timezone.utc)

    def due_day(self, now: datetime, last_done: date | None, since: datetime | None = None) -> date | None:
        """The day whose backup should run now: the latest day whose time has come, unless done.
        After downtime only the latest missed day runs: older days' data is gone anyway.
        A day whose time came before `since` (the addon's creation) was never missed; but a creation
        stamped after `now` was stamped by a clock stepped back since (by up to CLOCK_STEP): a day whose
        time came within that step before the stamp may have found the addon there, and is not skipped."""
        today = now.astimezone(self.tz).date()
        day = today if self.on(today) <= now else today - timedelta(days=1)
        if last_done is not None and day <= last_done:
            return None
        if since is not None and self.on(day) < (since - CLOCK_STEP if now < since else since):
            return None
        return day

    def describe(self, at: datetime, zone: str = PLATFORM_ZONE) -> str:
        """As the reference says it: "daily at 5:00 CET" (in the platform's zone, on the day `at`)."""
        moment = self.on(at.astimezone(self.tz).date()).astimezone(ZoneInfo(zone))
        return f"{moment.hour}:{moment.minute:02d} {moment.tzname()}"


DEFAULT = Schedule(1, 0, PLATFORM_ZONE)
