"""The engine's clock jumping an hour forward and back (issue 15, part 5), on a real engine with a real
starter addon: each day's scheduled backup is made once, none twice, none skipped, and the certificate
renewal and maintenance windows, on the same clock, start nothing by mistake. Only the engine's clock
moves (engine/clock.py, given to engine.bootstrap.build): the machine's stays, as Docker and TLS need it.
The scheduler's ticks are driven here (tick() with no time: the engine reads its own clock)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from engine import build
from tests.integration.conftest import remove_everything_of, running_addon, settings_for

APP = f"it-clock-{secrets.token_hex(3)}"
HOUR = timedelta(hours=1)


class MovableClock:
    """The engine's clock, set by the test."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
async def clock():
    return MovableClock(datetime.now(timezone.utc) - HOUR)  # an hour behind the machine's


@pytest.fixture(scope="module")
async def engine(tmp_path_factory, clock):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("clock") / "home"), clock=clock) as running:
            yield running
    finally:
        await remove_everything_of(APP)


@pytest.fixture(scope="module")
async def addon(engine) -> dict:
    """Made while the engine's clock is an hour behind the machine's; backed up daily half an hour after
    that clock read at its making (the machine's clock had passed that time already)."""
    name = await running_addon(engine, APP)
    made = datetime.fromisoformat((await engine.addon(APP, name))["created_at"])  # the event's, the machine's time
    daily = (made - HOUR / 2).replace(second=0, microsecond=0)
    await engine.backups.set_schedule(APP, name, f"{daily:%H:%M} UTC", "UTC")
    return {"name": name, "daily": daily}


async def tick_at(engine, clock, at: datetime) -> list[str]:
    """One scheduler round with the engine's clock at `at`; the days whose backup it started."""
    clock.at = at
    ticked = await engine.scheduler.tick()
    assert ticked["renewing"] == [] and ticked["maintenance"] == []  # same clock: nothing due by mistake
    days = []
    for started in ticked["started"]:
        done = await engine.wait_for_operation(started["operation_id"], timeout=60)
        assert done["status"] == "succeeded", done
        days.append((await engine.backups.get(APP, started["addon"], started["backup_id"]))["day"])
    return days


async def test_the_first_day_is_backed_up_when_the_clock_that_made_the_addon_was_an_hour_behind(engine, clock, addon):
    """The addon existed at its backup time by the engine's clock, though its creation was recorded later."""
    first = addon["daily"]
    assert await tick_at(engine, clock, first - timedelta(minutes=5)) == []
    assert await tick_at(engine, clock, first + timedelta(minutes=1)) == [first.date().isoformat()]


async def test_jumps_of_an_hour_forward_and_back_make_each_day_s_backup_once(engine, clock, addon):
    for day in (1, 2):
        at = addon["daily"] + timedelta(days=day)
        assert await tick_at(engine, clock, at - HOUR / 2) == []  # before the hour
        assert await tick_at(engine, clock, at + HOUR / 2) == [at.date().isoformat()]  # jumped over it: made
        assert await tick_at(engine, clock, at - HOUR / 2 + timedelta(minutes=1)) == []  # back before it
        # Ticks look at certificates every few hours (a monotonic clock): looked at now too, by the jumped one.
        assert await engine.certificate_renewals.renew_due(force_check=True) == []
        assert await tick_at(engine, clock, at + timedelta(minutes=1)) == []  # the hour again: not twice
        assert await tick_at(engine, clock, at + HOUR * 2) == []
    rows = await engine.backups.list(APP, addon["name"])
    assert sorted((r["kind"], r["day"], r["status"]) for r in rows) == [
        ("scheduled", (addon["daily"] + timedelta(days=d)).date().isoformat(), "done") for d in (0, 1, 2)]
    assert (await engine.addon(APP, addon["name"]))["status"] == "running"
