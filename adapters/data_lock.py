"""One engine per data directory: an OS file lock on `<data directory>/engine.lock`, held from
the engine's start to its stop.

Two engines on one data directory would both resume the same unfinished operations, and both
schedulers would take the same backups. flock(2) belongs to the open file and the kernel drops
it when its holder dies, however it dies (SIGKILL too): a lock file left behind never blocks,
only a live holder does. Being per open file, it also refuses a second engine of the same
process. The file is never deleted: a holder unlinking it could let two others lock two files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path

LOCK_FILE = "engine.lock"


class DataDirectoryInUse(Exception):
    """Another engine, alive, holds the data directory; the message names it."""


class FileDataLock:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / LOCK_FILE
        self._fd: int | None = None
        self._api: str | None = None

    def acquire(self) -> None:
        if self._fd is not None:  # held already: a start tried again
            return
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DataDirectoryInUse(
                f"data directory {self.home} is in use by another redis-addons engine ({holder}): "
                "stop that one first, or give this one a data directory of its own (REDIS_ADDONS_HOME)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._record()

    def announce(self, api: str) -> None:
        """The API address this engine serves: a second one refused shows it."""
        self._api = api
        if self._fd is not None:
            self._record()

    def still_held(self) -> bool:
        """A file lock is lost only with its process."""
        return True

    def release(self) -> None:
        """Idempotent; an engine that never held it releases nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # what it said is no longer true
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _record(self) -> None:
        """Who holds it, for whoever is refused: written whole at offset 0, then cut to its length."""
        line = json.dumps({"pid": os.getpid(), "api": self._api,
                           "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode() + b"\n"
        os.pwrite(self._fd, line, 0)
        os.ftruncate(self._fd, len(line))


def _holder(fd: int) -> str:
    """The holder as its lock file says: "pid 1234, API http://127.0.0.1:8470"."""
    try:
        recorded = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid = int(recorded["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return "it has not written its pid yet"  # it locked an instant ago
    who = f"pid {pid}" + (" (this process)" if pid == os.getpid() else "")
    api = recorded.get("api")
    return f"{who}, API {api}" if api else f"{who}, no API (embedded, or its API is not listening yet)"
