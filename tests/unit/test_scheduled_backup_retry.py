"""A scheduled backup that fails on a short fault (its host's engine or the backup store away for a moment)
is tried again later the same day, as another attempt with an ID of its own, RETRY_AFTER after the failed
one and up to ATTEMPTS_A_DAY in all: the day's backup was lost (the day counted as backed up). A day never
has two done: an attempt is made only once every one before has failed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from engine.backups import ATTEMPTS_A_DAY, RETRY_AFTER
from tests.unit.engine_fakes import APP, a_running_addon, finished

SOON = timedelta(minutes=1)


def the_night() -> datetime:
    return datetime.now(timezone.utc).replace(hour=3, minute=30, second=0, microsecond=0) + timedelta(days=1)


async def test_a_scheduled_backup_that_failed_is_made_again_later_that_day_once(world, engine):
    addon = await a_running_addon(world, engine)
    await engine.backups.set_schedule(APP, addon.name, "3:00", "UTC")
    world.backups.fail_for_good("write_archive", times=1)
    night = the_night()

    [first] = (await engine.scheduler.tick(night))["started"]
    assert (await finished(engine, first))["status"] == "failed"
    assert (await engine.scheduler.tick(night + RETRY_AFTER - SOON))["started"] == []  # the fault may last a moment
    [again] = (await engine.scheduler.tick(night + RETRY_AFTER))["started"]
    assert (await finished(engine, again))["status"] == "succeeded"
    assert (await engine.scheduler.tick(night + 3 * RETRY_AFTER))["started"] == []  # done: not again

    rows = await engine.backups.list(APP, addon.name)
    assert sorted((r["day"], r["status"]) for r in rows) == [(night.date().isoformat(), "done"),
                                                             (night.date().isoformat(), "failed")]
    assert again["backup_id"] != first["backup_id"]


async def test_a_day_whose_backups_keep_failing_is_tried_a_few_times_only(world, engine):
    addon = await a_running_addon(world, engine)
    await engine.backups.set_schedule(APP, addon.name, "3:00", "UTC")
    world.backups.fail_for_good("write_archive")
    night = the_night()

    for attempt in range(ATTEMPTS_A_DAY):
        [started] = (await engine.scheduler.tick(night + attempt * RETRY_AFTER))["started"]
        assert (await finished(engine, started))["status"] == "failed"
    assert (await engine.scheduler.tick(night + ATTEMPTS_A_DAY * RETRY_AFTER))["started"] == []
    assert len(await engine.backups.list(APP, addon.name)) == ATTEMPTS_A_DAY
