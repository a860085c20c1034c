"""Files under the data directory as ItemStores (engine/recovery_ports.py): at fixed places (the CA's certificate
and key, the API tokens, the hosts file), each known by a name and kept with its own mode; and the TLS files the
hosts file names for its tcp:// Docker hosts."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath


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


class HostTLSFiles:
    """The files a tcp:// Docker host's `tls` entry names in the hosts file (its CA, the engine's client certificate
    and key: the key opens Docker, root on that host), by their path relative to the hosts file's directory, where a
    restore puts them back beside the hosts file it brings. A path outside that directory (absolute, or through
    "..") stays the operator's to keep: it is not taken."""

    def __init__(self, hosts_file: Path, base: Path | None = None):
        """`hosts_file`: where the entries are read; `base`: where a restore writes the files (its directory)."""
        self.hosts_file, self.base = Path(hosts_file), Path(base or Path(hosts_file).parent)

    def list_items(self) -> list[tuple[str, bytes]]:
        try:
            hosts = json.loads(self.hosts_file.read_text()).get("hosts") or []
        except (OSError, ValueError, AttributeError):
            return []  # no hosts file, or one the engine itself refuses: nothing it names can be taken
        names = sorted({path for host in hosts if isinstance(host, dict) and isinstance(host.get("tls"), dict)
                        for path in host["tls"].values() if isinstance(path, str) and _inside(path)})
        return [(name, (self.hosts_file.parent / name).read_bytes()) for name in names
                if (self.hosts_file.parent / name).is_file()]

    def put_item(self, name: str, value: bytes) -> None:
        if not _inside(name):
            raise ValueError(f"not a path inside the data directory: {name!r}")
        FileItems({name: (self.base / name, 0o600)}).put_item(name, value)

    def remove_item(self, name: str) -> None:
        if _inside(name):
            (self.base / name).unlink(missing_ok=True)


def _inside(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts
