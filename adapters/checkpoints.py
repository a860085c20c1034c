"""Checkpoints of read models kept in memory: one JSON file each, replaced atomically (written
beside, then renamed), readable by the engine's user only (it names apps and addons)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import structlog

log = structlog.get_logger("checkpoints")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


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

    # -- every checkpoint, for the control plane's export and restore (engine/recovery_ports.py) ------

    def list_items(self) -> list[tuple[str, bytes]]:
        if not self.directory.is_dir():
            return []
        return [(p.stem, p.read_bytes()) for p in sorted(self.directory.glob("*.json"))]

    def put_item(self, name: str, value: bytes) -> None:
        if not NAME.match(name):
            raise ValueError(f"not a checkpoint's name: {name!r}")
        self.save(name, json.loads(value))

    def remove_item(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
