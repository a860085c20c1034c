"""The saga coordinator: runs each operation's steps in order, durably.

Every step is recorded on the Operation before it runs and after it ends. Steps are
idempotent, so after a crash the coordinator simply runs the unfinished step again.
A step that fails for good triggers the saga's compensation.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from domain.operation import Operation
from engine.ports import TransientError
from engine.store import EventLog

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
        """Undo what the steps did, as far as makes sense, and say what was done."""


class Coordinator:
    def __init__(self, events: EventLog, sagas: dict[str, Saga], step_deadline_s: float, crash_at: str | None):
        self._events = events
        self._sagas = sagas
        self._deadline = step_deadline_s
        self._crash_at = crash_at
        self._tasks: dict[UUID, asyncio.Task] = {}

    def submit(self, operation_id: UUID) -> asyncio.Task:
        task = self._tasks.get(operation_id)
        if task is None or task.done():
            # A fresh context: the operation outlives the request that asked for it, and its logs must not carry it.
            task = asyncio.create_task(self._drive(operation_id), name=f"operation-{operation_id}", context=contextvars.Context())
            self._tasks[operation_id] = task
        return task

    async def wait(self, operation_id: UUID, timeout: float) -> bool:
        """Wait for the saga if this process drives it; False when it does not."""
        task = self._tasks.get(operation_id)
        if task is None:
            return False
        await asyncio.wait([task], timeout=timeout)
        return True

    async def stop(self) -> None:
        """Stop driving operations; they resume at the next start."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _drive(self, operation_id: UUID) -> None:
        operation = await self._events.get(operation_id)
        bound = log.bind(operation_id=str(operation_id), addon=operation.addon, kind=operation.kind)
        try:
            await self._run_steps(operation, self._sagas[operation.kind], bound)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the operation stays unfinished and resumes at the next start
            bound.error("operation interrupted; it resumes at the next start", error=describe(error))

    async def _run_steps(self, operation: Operation, saga: Saga, bound) -> None:
        while not operation.is_finished:
            if operation.failed_step:
                await self._compensate(operation, saga, bound)
                return
            step = operation.next_step
            operation.start_step(step)
            await self._events.save(operation)
            bound.info("step started", step=step)
            self._crash_point(f"{operation.kind}.{step}:before")
            try:
                result = await self._with_retries(saga.run_step, step, operation, deadline_s=saga_deadline(saga, step))
            except Exception as error:  # any failure ends the step, then compensation runs
                bound.warning("step failed", step=step, error=describe(error))
                operation = await self._events.get(operation.id)
                operation.fail_step(step, describe(error))
                await self._events.save(operation)
                continue
            operation = await self._events.get(operation.id)
            operation.succeed_step(step, result.detail, result.outcome)
            if operation.next_step is None:
                operation.mark_succeeded()
            await self._events.save(operation, *result.changes)
            bound.info("step succeeded", step=step, detail=result.detail)
            self._crash_point(f"{operation.kind}.{step}:after")
        bound.info("operation finished", status=operation.status)

    async def _compensate(self, operation: Operation, saga: Saga, bound) -> None:
        compensation = await self._with_retries(saga.compensate, operation, operation.error or "")
        operation = await self._events.get(operation.id)
        operation.mark_compensated(compensation.detail or "")
        await self._events.save(operation, *compensation.changes)
        bound.warning("operation compensated", detail=compensation.detail)

    async def _with_retries(self, fn, *args, deadline_s: float | None = None):
        """Transient errors are retried with backoff; the whole step must end by its deadline."""
        deadline_s = deadline_s or self._deadline
        last: list[str] = []

        def remember(state) -> None:
            last[:] = [describe(state.outcome.exception())]

        try:
            async with asyncio.timeout(deadline_s):
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(TransientError),
                    wait=wait_exponential(multiplier=0.01, max=0.25),  # short: a server that finishes loading is seen at once
                    before_sleep=remember,
                    reraise=True,
                ):
                    with attempt:
                        return await fn(*args)
        except TimeoutError:
            cause = f" (last error: {last[0]})" if last else ""
            raise TransientError(f"not done within its deadline of {deadline_s:g} s{cause}") from None

    def _crash_point(self, where: str) -> None:
        """Fault injection for tests: die here as a crash would, without cleanup."""
        if self._crash_at == where:
            log.warning("crash injected", at=where)
            os.kill(os.getpid(), signal.SIGKILL)


def saga_deadline(saga, step: str) -> float | None:
    """Steps that move data may take longer than the default; a saga says which."""
    return getattr(saga, "deadlines", {}).get(step)


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
