"""The real event log (engine.store.EventLog) on eventsourcing's in-memory (POPO) persistence, its
calls made on the event loop rather than on the store's thread (the integration tests have the thread).

Its store outlives an engine, as the SQLite file outlives a crash: an engine built again over the
same log finds every event saved before. It can also die at a save, before or after writing it,
to simulate a crash there (tests.unit.fakes.crash).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eventsourcing.popo import POPOApplicationRecorder

from engine.store import EventLog
from tests.unit.fakes.crash import Crash


def crashed_saving(labels: list[str], before: bool) -> Crash:
    return Crash(f"{'before' if before else 'after'} saving {', '.join(labels)}", labels, before)


def label(event) -> str:
    """`Operation.StepSucceeded(stop)`, `Addon.Provisioned`: what a test names a save by."""
    step = getattr(event, "step", None)
    return type(event).__qualname__ + (f"({step})" if step else "")


class InMemoryEventLog(EventLog):
    def __init__(self) -> None:
        super().__init__({})  # an empty env: eventsourcing's default persistence, in memory
        self.saves: list[list[str]] = []  # the labels of each save's events, in order
        self._crash: tuple[Callable[[int, list[str]], bool], bool] | None = None
        self._watches: list[tuple[str, Callable[[], None]]] = []

    async def _run(self, fn, *args):
        # In memory a call takes microseconds: made here, then the other tasks run once, as they would
        # while the real store's thread answers (a caller cancelled meanwhile finds it done, as with the
        # thread, which ends what it started). Through a thread and back, it was most of these tests' time.
        result = fn(*args)
        await asyncio.sleep(0)
        return result

    async def open(self) -> None:
        if self._app is None:  # a restarted engine opens the same store again
            await super().open()
            recorder = self._app.recorder
            assert isinstance(recorder, POPOApplicationRecorder), f"unit tests must not use {type(recorder).__name__}"

    async def close(self) -> None:
        """An engine stopping leaves the store to the next one; `shutdown` ends it."""

    async def shutdown(self) -> None:
        await super().close()

    # -- crashes --------------------------------------------------------------------------

    def crash_at_save(self, number: int, before: bool) -> None:
        """Die at the `number`-th save from now (1: the next one), before or after it is written."""
        at = len(self.saves) + number
        self._crash = (lambda count, _: count == at, before)

    def crash_on(self, event_label: str, before: bool) -> None:
        """Die at the first save holding an event labelled so (see `label`), before or after it is written."""
        self._crash = (lambda _, labels: event_label in labels, before)

    def when_saved(self, event_label: str, then: Callable[[], None]) -> None:
        """Call `then()` as soon as a save holding an event labelled so is written (before the saver goes on)."""
        self._watches.append((event_label, then))

    @property
    def crash_armed(self) -> bool:
        return self._crash is not None

    async def save(self, *aggregates) -> list:
        labels = [label(e) for a in aggregates for e in a.pending_events]
        crash = self._crash
        hit = crash is not None and crash[0](len(self.saves) + 1, labels)
        if hit:
            self._crash = None
            if crash[1]:
                raise crashed_saving(labels, before=True)
        recordings = await super().save(*aggregates)
        self.saves.append(labels)
        for watched, then in list(self._watches):
            if watched in labels:
                self._watches.remove((watched, then))
                then()
        if hit:
            raise crashed_saving(labels, before=False)
        return recordings

    async def events_of(self, aggregate_id) -> list:
        """Every event of one aggregate, in order."""
        return await self._run(lambda: list(self._app.repository.event_store.get(aggregate_id)))
