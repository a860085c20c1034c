"""Files at fixed places under the data directory (the CA's certificate and key, the API tokens, the hosts
file) as one ItemStore (engine/recovery_ports.py): each known by a name, kept with its own mode."""

from __future__ import annotations

import os
from pathlib import Path


class FileItems:
    def __init__(self, files: dict[str, tuple[Path, int]]):
        """`files`: name -> (path, mode it is written with)."""
        self.files = {name: (Path(path), mode) for name, (path, mode) in files.items()}

    def list_items(self) -> list[tuple[str, bytes]]:
        return [(name, path.read_bytes()) for name, (path, _) in self.files.items() if path.is_file()]

    def put_item(self, name: str, value: bytes) -> None:
        if name not in self.files:
            raise ValueError(f"unknown item {name!r} (this release keeps {', '.join(self.files)})")
        path, mode = self.files[name]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        draft = path.with_name(f".{path.name}.{os.getpid()}.restore")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(value)
                out.flush()
                os.fsync(out.fileno())
            os.replace(draft, path)  # whole or not at all
        except BaseException:
            draft.unlink(missing_ok=True)
            raise

    def remove_item(self, name: str) -> None:
        if name in self.files:
            self.files[name][0].unlink(missing_ok=True)
