"""Which process runs the installation's duties (engine/duties.py): two processes, each with its Duties, the real
EventLeases on one event log in memory, and an in-memory stand-in for the duties lock (the PostgreSQL advisory
lock is tested on a real server in tests/integration/test_duties_lock_postgres.py). One holder runs the duties;
a holder whose lock went (its connection broke) stops them at its next check; another takes them over; none of
it records anything in the log."""

from __future__ import annotations

import asyncio

import pytest

from engine.duties import Duties
from engine.leases import EventLeases, SoleLeases
from tests.unit.fakes import InMemoryEventLog

LEASE_S = 0.06  # renewal period: 20 ms of the test's own time (the loop checks the lock every period)


class LockServer:
    """What PostgreSQL keeps of one advisory lock: which session holds it."""

    def __init__(self):
        self.holder: FakeLock | None = None

    def drop_connection_of(self, lock: FakeLock) -> None:
        """The holder's connection ended (its process killed, the server restarted): the server frees its lock."""
        lock.connected = False
        if self.holder is lock:
            self.holder = None


class FakeLock:
    def __init__(self, server: LockServer):
        self.server, self.connected = server, True
        self.released = 0

    async def try_hold(self) -> bool:
        self.connected = True  # a new connection when the last one broke
        if self.server.holder is None:
            self.server.holder = self
        return self.server.holder is self

    async def still_held(self) -> bool:
        return self.connected and self.server.holder is self

    async def release(self) -> None:
        self.released += 1
        if self.server.holder is self:
            self.server.holder = None


class Part:
    def __init__(self):
        self.running, self.starts = False, 0

    def start(self):
        self.running, self.starts = True, self.starts + 1

    async def stop(self):
        self.running = False


class NoTakeover:
    def start(self):
        pass

    async def stop(self):
        pass


@pytest.fixture
async def log():
    events = InMemoryEventLog()
    await events.open()
    yield events
    await events.shutdown()


@pytest.fixture
async def processes(log):
    """start(): one more process on the log and the lock's server, its duties started; all stopped at the end."""
    server, started = LockServer(), []

    async def start() -> tuple[Duties, Part, FakeLock]:
        part, lock = Part(), FakeLock(server)
        duties = Duties(EventLeases(log, f"process-{len(started)}", LEASE_S), [part], NoTakeover(), lock)
        started.append(duties)
        await duties.start()
        return duties, part, lock

    start.server = server
    yield start
    for duties in started:
        await duties.stop()


async def until(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_the_holder_runs_the_duties_and_the_other_takes_them_over_when_its_connection_breaks(log, processes):
    (a, a_part, a_lock), (b, b_part, _) = await processes(), await processes()
    assert a.leading and a_part.running and not b.leading and not b_part.running
    await b.check()
    assert not b_part.running  # held by a: b waits
    processes.server.drop_connection_of(a_lock)  # a killed, say: b's next check comes first
    await b.check()
    assert b.leading and b_part.running and b_part.starts == 1
    await a.check()  # a (were it alive) finds its lock gone: it stops, and b holds it now
    assert not a.leading and not a_part.running
    await asyncio.sleep(5 * LEASE_S / 3)  # a few periods of the loops: b keeps them, a waits
    assert b.leading and b_part.starts == 1 and not a.leading and not a_part.running
    assert log.saves == []  # leadership recorded nothing


async def test_a_holder_that_lost_its_lock_stops_its_duties_at_its_next_check_even_with_none_to_take_over(processes):
    a, a_part, a_lock = await processes()
    a.lock.try_hold = unanswered  # PostgreSQL away: no new connection either
    processes.server.drop_connection_of(a_lock)
    await until(lambda: not a.leading)  # found by its own periodic check
    assert not a_part.running and a_lock.released == 1


async def unanswered() -> bool:
    return False


async def test_a_stopped_holder_gives_the_lock_up_and_the_other_takes_the_duties_at_its_next_check(log, processes):
    (a, a_part, _), (b, b_part, _) = await processes(), await processes()
    await a.stop()
    assert not a_part.running and processes.server.holder is None
    await until(lambda: b.leading)
    assert b_part.running and log.saves == []


async def test_two_processes_idle_for_several_renewal_periods_record_nothing(log, processes):
    (a, _, _), (b, _, b_lock) = await processes(), await processes()
    tries = []
    original = b_lock.try_hold

    async def counted() -> bool:
        tries.append(1)
        return await original()

    b_lock.try_hold = counted
    await until(lambda: len(tries) >= 5)  # five periods of b trying, a holding
    assert a.leading and not b.leading and log.saves == []


async def test_a_process_alone_on_its_store_runs_the_duties_at_once_and_checks_nothing():
    part = Part()
    duties = Duties(SoleLeases(), [part], NoTakeover())
    await duties.start()
    try:
        assert duties.leading and part.running and duties._task is None
    finally:
        await duties.stop()
    assert not part.running


class FailingOnce(Part):
    def start(self):
        if not self.starts:
            self.starts += 1
            raise ConnectionError("the store did not answer")
        super().start()


async def test_a_duty_that_cannot_start_stops_those_started_before_it_and_the_next_check_starts_each_once(log):
    first, failing, lock = Part(), FailingOnce(), FakeLock(LockServer())
    duties = Duties(EventLeases(log, "process-0", LEASE_S), [first, failing], NoTakeover(), lock)
    with pytest.raises(ConnectionError):
        await duties.check()
    assert not duties.leading and not first.running and lock.server.holder is None  # none half-started
    await duties.check()
    assert duties.leading and first.running and failing.running and first.starts == 2
    await duties.stop()
