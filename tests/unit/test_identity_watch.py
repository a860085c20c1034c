"""The engine's watch over its process identity (engine/identity_watch.py) and the leases it gives up once another
process holds the identity (engine/leases.py give_up), over the real event log in memory and a lock that answers
as the test says. The lock on a real PostgreSQL: tests/integration/test_process_lock_postgres.py."""

from __future__ import annotations

import asyncio

import pytest

from engine.identity_watch import IdentityWatch, ProcessIdentityLost
from engine.leases import EventLeases, SoleLeases


class AnsweringLock:
    """still_held answers from `answers` in turn (an exception is raised), then the last one again."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), 0

    def still_held(self) -> bool:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def watch_of(lock, leases, stopped: list) -> IdentityWatch:
    async def stop_duties():
        stopped.append("duties")

    async def stop_coordinator():
        stopped.append("coordinator")

    return IdentityWatch(lock, leases, [stop_duties, stop_coordinator])


async def test_leases_given_up_stop_their_drivers_record_nothing_and_none_is_taken_again(memory_log):
    leases = EventLeases(memory_log, "machine-1:/srv/a", lease_s=15.0)
    lost = []
    assert await leases.take("operation:x", on_lost=lambda: lost.append("x"))
    saves = len(memory_log.saves)
    leases.give_up("process identity 'machine-1:/srv/a' is another process's now")
    assert lost == ["x"] and not leases.holds("operation:x")
    assert not await leases.take("operation:x") and not await leases.take("operation:y")
    assert len(memory_log.saves) == saves  # in the log the leases are still the identity's: the other renews them



async def test_a_lease_whose_take_was_on_its_way_when_given_up_is_not_held(memory_log):
    """Its save landed after the identity was lost: the lease is the other process's, neither renewed nor driven here
    (held, it was renewed by this process's renewal loop and its driver went on)."""
    leases = EventLeases(memory_log, "machine-1:/srv/a", lease_s=15.0)
    saving, go_on, save = asyncio.Event(), asyncio.Event(), memory_log.save

    async def slow_save(*aggregates):
        saving.set()
        await go_on.wait()
        return await save(*aggregates)

    memory_log.save = slow_save
    taking = asyncio.create_task(leases.take("operation:x"))
    await saving.wait()
    leases.give_up("process identity 'machine-1:/srv/a' is another process's now")
    go_on.set()
    assert not await taking and not leases.holds("operation:x")


async def test_an_identity_still_held_or_unanswered_is_no_loss_and_one_held_by_another_stops_the_driving(memory_log):
    leases = EventLeases(memory_log, "machine-1:/srv/a", lease_s=15.0)
    await leases.take("operation:x")
    stopped = []
    watch = watch_of(AnsweringLock(True, RuntimeError("the check itself failed"), False), leases, stopped)
    assert not await watch.check() and not await watch.check()  # held; a failed check is asked again
    assert stopped == [] and leases.holds("operation:x") and not watch.lost.is_set() and watch.error is None
    assert await watch.check()
    assert stopped == ["duties", "coordinator"] and watch.lost.is_set()
    assert not leases.holds("operation:x") and not await leases.take("operation:x")
    assert isinstance(watch.error, ProcessIdentityLost)
    assert "process identity 'machine-1:/srv/a' was lost" in str(watch.error)
    assert "REDIS_ADDONS_PROCESS_ID" in str(watch.error)


async def test_the_watch_checks_every_renewal_period_until_the_identity_is_lost(memory_log):
    leases = EventLeases(memory_log, "machine-1:/srv/a", lease_s=0.03)  # a check every 10 ms
    lock, stopped = AnsweringLock(True, True, True, False), []
    watch = watch_of(lock, leases, stopped)
    watch.start()
    try:
        await asyncio.wait_for(watch.lost.wait(), timeout=10)
        assert lock.asked == 4 and stopped == ["duties", "coordinator"]
    finally:
        await watch.stop()
    await watch.stop()  # idempotent, as the engine's stop after a loss calls it again


async def test_nothing_is_watched_for_a_process_alone_on_its_store_or_without_a_lock(memory_log):
    for watch in (watch_of(AnsweringLock(False), SoleLeases(), []),
                  watch_of(None, EventLeases(memory_log, "machine-1:/srv/a", lease_s=15.0), [])):
        watch.start()
        assert watch._task is None
        await watch.stop()
