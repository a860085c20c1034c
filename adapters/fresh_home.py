"""A data directory a control plane is restored into: empty (or not there yet) before, held by the engine's
lock meanwhile (no engine starts on half a restore), and left as it was found if the restore fails."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from adapters.data_lock import FileDataLock
from engine.recovery_ports import NotFresh


@contextmanager
def fresh_data_directory(home: Path):
    home = Path(home)
    existed = home.exists()
    if existed and not home.is_dir():
        raise NotFresh(f"{home} is not a directory: give a new (or empty) data directory to restore into")
    if existed and (held := sorted(p.name for p in home.iterdir())):
        raise NotFresh(f"data directory {home} is not empty ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): "
                       "a control plane is restored only into a new or empty one, which nothing is lost by filling; "
                       "give another REDIS_ADDONS_HOME")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = FileDataLock(home)
    try:
        lock.acquire()
        yield home
    except BaseException:
        lock.release()
        if existed:
            for path in home.iterdir():
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        else:
            shutil.rmtree(home, ignore_errors=True)
        raise
    lock.release()
