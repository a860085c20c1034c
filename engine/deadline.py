"""A step's deadline that a library cannot lose.

`asyncio.timeout` cancels the work once. On Python 3.11, `asyncio.wait_for` swallows a cancellation
that arrives as the call it wraps completes (CPython gh-86296, fixed in 3.12), and redis-py sends every
command through `asyncio.wait_for` when a socket timeout is set (ours always is). A step that retries
a refused Redis command (a port another process holds) then runs on with its deadline spent and never
fails: seen as a force-TLS change waiting a minute past its 3 s deadline. Here the work runs as a task
of its own, cancelled again every RECANCEL_S until it has stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

RECANCEL_S = 0.05  # a swallowed cancellation costs this much more at most (per swallow)


async def within(deadline_s: float, work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError once `deadline_s` has passed and `work` has stopped. The
    work runs in a copy of this task's context (what its events record about who asked goes along)."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait([task], timeout=deadline_s)
    except BaseException:  # this task was cancelled (the engine stops): the work stops with it
        await _stop(task)
        raise
    if task.done():
        return task.result()
    await _stop(task)
    if not task.cancelled() and task.exception() is None:
        return task.result()  # it finished just as it was stopped: what it did stands
    raise TimeoutError(f"not done within {deadline_s:g} s")


async def _stop(task: asyncio.Task) -> None:
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait([task], timeout=RECANCEL_S)
        except asyncio.CancelledError:
            if not task.done():
                task.cancel()
            raise
