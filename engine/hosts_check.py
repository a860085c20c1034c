"""Whether the engine can start: its Docker hosts, as found at start-up."""

from __future__ import annotations

import structlog

from engine.ports import EffectError, Runtime

log = structlog.get_logger("engine")


async def some_hosts_answer(runtime: Runtime, hosts) -> None:
    """Refused when no host answers (one line naming each); with some silent, the engine starts and
    looks after their nodes as down: a Business cluster heals around a host that is gone, and an
    engine restarted meanwhile must go on doing so."""
    try:
        await runtime.check()
    except EffectError as error:
        if len((await runtime.survey()).silent) >= len(hosts):
            raise
        log.warning("some hosts do not answer; the engine starts and looks after their nodes as down", error=str(error))
