"""Checkpoints of read models kept in memory: one JSON file each, replaced atomically (written
beside, then renamed), readable by the engine's user only (it names apps and addons)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import structlog

log = structlog.get_logger("checkpoints")


class FileCheckpoints:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def load(self, name: str) -> dict | None:
        try:
            return json.loads(self._path(name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # unreadable: the log has everything, read it all
            log.warning("checkpoint ignored", name=name, error=str(error))
            return None

    def save(self, name: str, state: dict) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path, partial = self._path(name), self._path(name).with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
