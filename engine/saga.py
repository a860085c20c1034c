"""The saga coordinator: runs each operation's steps in order, durably.

Every step is recorded on the Operation before it runs and after it ends. Steps are
idempotent, so after a crash the coordinator simply runs the unfinished step again.
A step that fails for good triggers compensation: the steps that ran are undone, latest first,
by the saga's `undo_step` (where it has one), then the saga's `compensate` records the outcome.
A compensation that cannot finish by its deadline puts the addon in "needs attention" and is
tried again with growing backoff, or at once when an operator asks (`retry`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import structlog
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from domain.addon import Addon
from domain.lease import LeaseLost, operation_lease
from domain.operation import Operation
from engine import audit
from engine.deadline import within
from engine.leases import SoleLeases
from engine.monitoring_ports import StepObserver
from engine.ports import EngineUnreachable, TransientError
from engine.store import AggregateNotFoundError, EventLog, EventStoreUnavailable, IntegrityError

log = structlog.get_logger("saga")


@dataclass
class StepResult:
    detail: str | None = None
    outcome: dict | None = None  # what the step measured, recorded on the Operation for later steps
    changes: tuple = field(default_factory=tuple)  # aggregates saved together with the step's success


class Saga(Protocol):
    kind: str

    async def run_step(self, step: str, operation: Operation) -> StepResult: ...

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        """After the undos: undo what is left, as far as makes sense, record the failure, and say what was done."""

    # Optional: `async def undo_step(self, step, operation) -> StepResult | None`, the undo of one
    # step's effect (idempotent), or None when that step has nothing to undo.


class CompensationStuck(Exception):
    """Compensation did not finish by its deadline; the operation needs attention."""


ATTENTION_FIRST_RETRY_S = 5.0
ATTENTION_MAX_RETRY_S = 600.0
STORE_RETRY_S, STORE_MAX_RETRY_S = 0.5, 15.0  # an event store that cannot write is tried again this often


class Coordinator:
    def __init__(self, events: EventLog, sagas: dict[str, Saga], step_deadline_s: float, crash_at: str | None,
                 attention_retry_s: float = ATTENTION_FIRST_RETRY_S, leases=None):
        self.leases = leases or SoleLeases()  # engine/leases.py: which process drives each operation
        self._events = self.leases.fenced(events)  # shared store: a save of an operation renews its lease
        self._sagas = sagas
        self.step_deadline_s = step_deadline_s  # a step's own (saga_deadline) wins
        self._crash_at = crash_at
        self._attention_retry_s = attention_retry_s
        self._tasks: dict[UUID, asyncio.Task] = {}
        self._retry_now: dict[UUID, asyncio.Event] = {}
        self._step_observers: list[StepObserver] = []
        self._hosts_back = 0  # how many times retry_stuck was called

    def observe_steps(self, observer: StepObserver) -> None:
        """`observer` is told each step's duration and outcome from now on (/metrics' histogram)."""
        self._step_observers.append(observer)

    def unobserve_steps(self, observer: StepObserver) -> None:
        """`observer` is told nothing more (an HTTP app sharing this engine has stopped); unknown: no-op."""
        if observer in self._step_observers:
            self._step_observers.remove(observer)

    def submit(self, operation_id: UUID) -> asyncio.Task:
        task = self._tasks.get(operation_id)
        if task is None or task.done():
            # A fresh context: the operation outlives the request that asked for it, and its logs must not carry it;
            # only who asked goes with it (engine/audit.py), so that its steps' events record the requester.
            task = asyncio.create_task(self._drive(operation_id), name=f"operation-{operation_id}", context=audit.context_for())
            self._tasks[operation_id] = task
        return task

    def retry(self, operation_id: UUID) -> None:
        """An operator's retry: a compensation waiting for its next attempt tries again now."""
        if (wake := self._retry_now.get(operation_id)) is not None:
            wake.set()
        else:
            self.submit(operation_id)

    def retry_stuck(self) -> None:
        """Every compensation waiting for its next attempt tries again now: a host's Docker engine answers
        again (its wait grows to 10 minutes; the undo it waited for can usually be done at once)."""
        self._hosts_back += 1  # seen by a compensation failing now, before its wait begins
        for wake in list(self._retry_now.values()):
            wake.set()

    def forget(self, operation_id: UUID) -> None:
        """Stop driving an operation that was abandoned (its addon is being removed)."""
        if (task := self._tasks.get(operation_id)) is not None and task is not asyncio.current_task():
            task.cancel()

    async def wait(self, operation_id: UUID, timeout: float) -> bool:
        """Wait for the saga if this process drives it; False when it does not, or no longer does (its
        task ended, the operation maybe unfinished: a caller that waited on it again would spin)."""
        task = self._tasks.get(operation_id)
        if task is None or task.done():
            return False
        await asyncio.wait([task], timeout=timeout)
        return True

    async def stop(self) -> None:
        """Stop driving operations; they resume at the next start."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def is_driving(self, operation_id: UUID) -> bool:
        return (task := self._tasks.get(operation_id)) is not None and not task.done()

    async def _drive(self, operation_id: UUID) -> None:
        """Only with the operation's lease (another process may hold it: it drives it then)."""
        lease = operation_lease(operation_id)
        if not await self.leases.take(lease, on_lost=lambda: self.forget(operation_id)):
            return
        try:
            await self._drive_held(operation_id)
        except LeaseLost as lost:
            log.warning("operation left to the process that took its lease", operation_id=str(operation_id),
                        why=str(lost))
        finally:
            self.leases.drop(lease)

    async def _drive_held(self, operation_id: UUID) -> None:
        bound = log.bind(operation_id=str(operation_id))
        delay, store_delay = self._attention_retry_s, STORE_RETRY_S
        while True:
            hosts_back = self._hosts_back  # a host back from now on may let the next attempt through
            try:
                # Read in the try: a store that cannot be read (after a failed write, or at the start) is
                # waited for like one that cannot write; it ended the task unlogged, the operation left running.
                operation = await self._events.get(operation_id)
                bound = log.bind(operation_id=str(operation_id), addon=operation.addon, kind=operation.kind)
                await self._run_steps(operation, self._sagas[operation.kind], bound)
                return
            except (asyncio.CancelledError, LeaseLost):
                raise
            except EventStoreUnavailable as error:
                # Its disk full or read-only: what the step did is not recorded, so it runs again from what
                # is (steps are idempotent) once the store writes again, without waiting for a restart.
                bound.error("the event store cannot record the operation; it goes on when it can",
                            error=str(error), retry_in_s=store_delay)
                await asyncio.sleep(store_delay)
                store_delay = min(store_delay * 2, STORE_MAX_RETRY_S)
            except CompensationStuck as stuck:
                bound.error("compensation failed; the addon needs attention", error=str(stuck), retry_in_s=delay)
                if hosts_back == self._hosts_back:  # else a host came back during the attempt: try again now
                    await self._pause_before_retry(operation_id, delay)
                delay = min(delay * 2, ATTENTION_MAX_RETRY_S)
            except Exception as error:  # the operation stays unfinished and resumes at the next start
                bound.error("operation interrupted; it resumes at the next start", error=describe(error))
                return

    async def _pause_before_retry(self, operation_id: UUID, delay: float) -> None:
        wake = self._retry_now[operation_id] = asyncio.Event()
        try:
            async with asyncio.timeout(delay):
                await wake.wait()
        except TimeoutError:
            pass
        finally:
            self._retry_now.pop(operation_id, None)

    async def _run_steps(self, operation: Operation, saga: Saga, bound) -> None:
        while not operation.is_finished:
            if operation.failed_step:
                if await self._compensate(operation, saga, bound):
                    return
                operation = await self._events.get(operation.id)  # a save met a change: compensate again
                continue
            step = operation.next_step
            operation.start_step(step)
            await self._events.save(operation)
            bound.info("step started", step=step)
            self._crash_point(f"{operation.kind}.{step}:before")
            began = time.monotonic()
            try:
                result = await self._with_retries(saga.run_step, step, operation, deadline_s=saga_deadline(saga, step))
            except Exception as error:  # any failure ends the step, then compensation runs
                self._observed(operation.kind, step, "failed", began)
                bound.warning("step failed", step=step, error=describe(error))
                operation = await self._events.get(operation.id)
                operation.fail_step(step, describe(error))
                await self._events.save(operation)
                continue
            self._observed(operation.kind, step, "succeeded", began)
            operation = await self._events.get(operation.id)
            operation.succeed_step(step, result.detail, result.outcome)
            if operation.next_step is None:
                operation.mark_succeeded()
            try:
                await self._events.save(operation, *result.changes)
            except IntegrityError:
                # A watcher recorded a fact on an aggregate the step changed: run the step again
                # (steps are idempotent) on what is recorded now.
                bound.info("recorded facts changed during the step; it runs again", step=step)
                operation = await self._events.get(operation.id)
                continue
            bound.info("step succeeded", step=step, detail=result.detail)
            self._crash_point(f"{operation.kind}.{step}:after")
        bound.info("operation finished", status=operation.status)

    def _observed(self, kind: str, step: str, outcome: str, began: float) -> None:
        for observer in self._step_observers:
            try:
                observer(kind, step, outcome, time.monotonic() - began)
            except Exception as error:  # a broken observer must not stop an operation
                log.warning("step observer failed", error=describe(error))

    async def _compensate(self, operation: Operation, saga: Saga, bound) -> bool:
        """True once compensated (or given up meanwhile); False when a save met a change made
        meanwhile (a command or a watcher saved the same aggregate): compensation, idempotent, runs again."""
        try:
            operation = await self._undo_steps(operation, saga, bound)
            compensation = await self._with_retries(saga.compensate, operation, operation.error or "")
        except (asyncio.CancelledError, LeaseLost):
            raise
        except IntegrityError:
            bound.info("recorded facts changed during compensation; it runs again")
            return False
        except Exception as error:
            await self._needs_attention(operation.id, describe(error))
            raise CompensationStuck(describe(error)) from None
        operation = await self._events.get(operation.id)
        if operation.is_finished:  # given up meanwhile (the addon is being removed): nothing to record
            return True
        had_attention = operation.status == "needs-attention"
        operation.mark_compensated(compensation.detail or "")
        changes = list(compensation.changes)
        if had_attention:
            addon = next((c for c in changes if isinstance(c, Addon) and c.name == operation.addon), None)
            if addon is None:
                addon = await self._events.get(Addon.id_for(operation.addon))
                changes.append(addon)
            addon.clear_attention(operation.id)
        try:
            await self._events.save(operation, *changes)
        except IntegrityError:
            bound.info("recorded facts changed during compensation; it runs again")
            return False
        bound.warning("operation compensated", detail=compensation.detail)
        return True

    async def _undo_steps(self, operation: Operation, saga: Saga, bound) -> Operation:
        """Each step that ran is undone, latest first, and the undo recorded: a crash resumes after it."""
        undo = getattr(saga, "undo_step", None)
        if undo is None:
            return operation
        for step in operation.steps_to_undo:
            result = await self._with_retries(undo, step, operation)
            if result is None:
                continue
            operation = await self._events.get(operation.id)
            operation.mark_step_undone(step, result.detail or "undone")
            await self._events.save(operation, *result.changes)
            bound.info("step undone", step=step, detail=result.detail)
            self._crash_point(f"{operation.kind}.{step}:undone")
        return operation

    async def _needs_attention(self, operation_id: UUID, error: str) -> None:
        """Recorded once, when compensation first misses its deadline; later attempts only log."""
        for _ in range(5):  # the addon may be saved meanwhile (a schedule change): decide again
            try:
                return await self._record_needs_attention(operation_id, error)
            except IntegrityError:
                continue

    async def _record_needs_attention(self, operation_id: UUID, error: str) -> None:
        operation = await self._events.get(operation_id)
        if operation.status != "running":  # recorded already, or given up for the addon's removal
            return
        operation.mark_compensation_failed(error)
        changes = [operation]
        try:
            addon = await self._events.get(Addon.id_for(operation.addon))
        except AggregateNotFoundError:
            addon = None
        if addon is not None and addon.operation_id == operation.id:
            addon.mark_needs_attention(operation.id, error)
            changes.append(addon)
        await self._events.save(*changes)

    async def _with_retries(self, fn, *args, deadline_s: float | None = None):
        """Transient errors are retried with backoff; the whole step must end by its deadline."""
        deadline_s = deadline_s or self.step_deadline_s
        last: list[str] = []

        def remember(state) -> None:
            last[:] = [describe(state.outcome.exception())]

        unreachable = EngineWait(self.step_deadline_s)

        async def attempts():
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(unreachable.worth_retrying),
                wait=wait_exponential(multiplier=0.01, max=0.25),  # short: a server that finishes loading is seen at once
                before_sleep=remember,
                reraise=True,
            ):
                with attempt:
                    return await fn(*args)

        try:
            return await within(deadline_s, attempts())  # not asyncio.timeout: redis-py can lose its one cancel
        except TimeoutError:
            cause = f" (last error: {last[0]})" if last else ""
            raise TransientError(f"not done within its deadline of {deadline_s:g} s{cause}") from None

    def _crash_point(self, where: str) -> None:
        """Fault injection for tests: die here as a crash would, without cleanup; or, with ":freeze" after the
        point, stop (SIGSTOP) as a process stalled past its lease would, until a SIGCONT."""
        if self._crash_at in (where, f"{where}:freeze"):
            log.warning("crash injected", at=self._crash_at)
            os.kill(os.getpid(), signal.SIGSTOP if self._crash_at.endswith(":freeze") else signal.SIGKILL)


class EngineWait:
    """How long a step retries while a host's Docker engine does not answer at all: the default step
    deadline, also in a step allowed 15 or 30 minutes to move data (a plan change or a restore then keeps
    the database stopped: better undo it and serve from the old node than wait that long)."""

    def __init__(self, bound_s: float):
        self.bound_s, self.since = bound_s, None

    def worth_retrying(self, error: BaseException) -> bool:
        if not isinstance(error, EngineUnreachable):
            self.since = None
            return isinstance(error, TransientError)
        self.since = self.since or time.monotonic()
        return time.monotonic() - self.since < self.bound_s


def saga_deadline(saga, step: str) -> float | None:
    """Steps that move data may take longer than the default; a saga says which."""
    return getattr(saga, "deadlines", {}).get(step)


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
