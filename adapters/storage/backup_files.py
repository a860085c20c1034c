"""The BackupStore port over a local directory (by default `<data directory>/backups`).

Archives are written as `<key>.partial` and renamed once complete, so a reader never sees
half an archive and a failed backup leaves nothing behind. Compression runs in a worker
thread, overlapped with the next chunk's arrival: the event loop never waits on zlib or disk.

An archive holds all of a customer's data: files are 0600 and directories 0700 whatever the
umask, and a store laid out by an earlier release (0644 files in 0755 directories) is tightened
when it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import stat
import zlib
from pathlib import Path
from typing import AsyncIterator

import structlog
from isal import isal_zlib

from engine.ports import EffectError

CHUNK = 1 << 20
GZIP = 31  # zlib's window bits for a gzip container (RFC 1952), the `.tar.gz` the reference names
LEVEL = 1  # RDB strings are LZF-compressed already: a higher level costs time and saves little
DIR_MODE, FILE_MODE = 0o700, 0o600
NO_ROOM = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}
log = structlog.get_logger("backup-store")


class FileBackupStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        if self.root.is_dir():  # made at the first backup otherwise
            _tighten(self.root.resolve())

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise EffectError(f"backup key {key!r} points outside the backup directory")
        return path

    async def write_archive(self, key: str, tar: AsyncIterator[bytes]) -> dict:
        try:
            return await self._write_archive(key, tar)
        except OSError as error:
            if error.errno not in NO_ROOM:
                raise
            # The disk is named, not its path (an API client reads this): the operator's log has the root.
            log.error("the backup store cannot write", root=str(self.root), error=str(error))
            raise EffectError(f"the backup store's disk is {NO_ROOM[error.errno]} ({os.strerror(error.errno)}): "
                              "the backup was not stored and nothing of it is left; free space on it and back up "
                              "again") from None

    async def _write_archive(self, key: str, tar: AsyncIterator[bytes]) -> dict:
        final = self._path(key)
        partial = final.with_name(final.name + ".partial")
        await asyncio.to_thread(_make_private_dirs, self.root.resolve(), final.parent)
        sink = await asyncio.to_thread(_GzipSink, partial)
        pending: asyncio.Future | None = None
        try:
            async with _closing(tar) as source:
                async for chunk in source:
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(asyncio.to_thread(sink.add, chunk))
            if pending is not None:
                await pending
            size, digest = await asyncio.to_thread(sink.finish)
            await asyncio.to_thread(os.replace, partial, final)
        except BaseException:
            if pending is not None:  # the worker may still be writing: let it end before the file goes
                await asyncio.gather(pending, return_exceptions=True)
            await asyncio.to_thread(sink.discard)
            raise
        return {"size": size, "sha256": digest, "location": key}

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise EffectError(f"backup archive {key} is missing from the backup store") from None
        try:
            await asyncio.to_thread(handle.seek, start)
            left = None if end is None else max(end - start, 0)
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def read_tar(self, key: str) -> AsyncIterator[bytes]:
        unzip = zlib.decompressobj(GZIP)
        async with _closing(self.read(key)) as source:
            async for chunk in source:
                # Bounded output per call: a megabyte of very repetitive data could inflate a thousandfold.
                data = await asyncio.to_thread(unzip.decompress, chunk, CHUNK)
                while data:
                    yield data
                    data = await asyncio.to_thread(unzip.decompress, unzip.unconsumed_tail, CHUNK)
        rest = unzip.flush()
        if rest:
            yield rest
        if not unzip.eof:
            raise EffectError(f"backup archive {key} is truncated")

    async def checksum(self, key: str) -> tuple[int, str] | None:
        try:
            return await asyncio.to_thread(_file_digest, self._path(key))
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            for leftover in (path, path.with_name(path.name + ".partial")):  # a writer killed mid-way leaves .partial
                await asyncio.to_thread(leftover.unlink, missing_ok=True)
        except NotADirectoryError:  # no directory, so no archive either
            return
        try:
            await asyncio.to_thread(path.parent.rmdir)  # the backup's own directory, once empty
        except OSError:
            pass


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[bytes]):
    """The source closed as soon as the reading ends, even by an error (a Docker response, a file)."""
    try:
        yield chunks
    finally:
        if hasattr(chunks, "aclose"):
            await chunks.aclose()


class _GzipSink:
    """Compresses, hashes and writes one archive (called from a worker thread)."""

    def __init__(self, path: Path):
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # the umask may take bits off; a .partial left by a crash may be wider
        self.file = os.fdopen(fd, "wb")
        # ISA-L's deflate: the same gzip format at ~8x zlib's speed (bench/backup.py measures both).
        self.zip = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, GZIP)
        self.digest, self.size = hashlib.sha256(), 0

    def _write(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            self.digest.update(data)
            self.size += len(data)

    def add(self, chunk: bytes) -> None:
        self._write(self.zip.compress(chunk))

    def finish(self) -> tuple[int, str]:
        self._write(self.zip.flush())
        self.file.flush()
        os.fsync(self.file.fileno())  # a backup said done is on disk
        self.file.close()
        return self.size, self.digest.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a full disk refuses the buffered rest at close too: the file goes anyway
            self.file.close()
        self.path.unlink(missing_ok=True)


def _make_private_dirs(base: Path, directory: Path) -> None:
    """`directory` and its parents up to `base` included, made where missing, each 0700 (mkdir's mode
    is cut by the umask, and a directory made by hand meanwhile may be wider)."""
    chain = [directory, *(p for p in directory.parents if base == p or base in p.parents)]
    for path in reversed(chain):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made already (or by a concurrent backup), or a file is in the way
            if not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path)) from None
        _chmod(str(path), DIR_MODE)


def _tighten(root: Path) -> None:
    """Every directory 0700 and file 0600 under `root` (an earlier release wrote 0755 and 0644)."""
    for directory, _, files in os.walk(root):
        _chmod(directory, DIR_MODE)
        for name in files:
            _chmod(os.path.join(directory, name), FILE_MODE)


def _chmod(path: str, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):  # deleted by a sweep meanwhile
        found = os.lstat(path)
        if not stat.S_ISLNK(found.st_mode) and stat.S_IMODE(found.st_mode) != mode:
            os.chmod(path, mode)


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
