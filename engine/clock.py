"""The engine's clock: the one time of day the scheduler, backups, certificate renewal and maintenance
windows decide by. It is a port so that an embedder or a test can move it (jump it an hour forward or
back) without touching the machine's clock, which Docker and TLS depend on. Waiting and deadlines use
the event loop's monotonic clock instead, which no jump moves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]  # now, timezone-aware (UTC)


def system_clock() -> datetime:
    return datetime.now(timezone.utc)
