"""The BackupStore port over a local directory (by default `<data directory>/backups`).

Archives are written as `<key>.partial` and renamed once complete, so a reader never sees
half an archive and a failed backup leaves nothing behind. Compression runs in a worker
thread, overlapped with the next chunk's arrival: the event loop never waits on zlib or disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import zlib
from pathlib import Path
from typing import AsyncIterator

from isal import isal_zlib

from engine.ports import EffectError

CHUNK = 1 << 20
GZIP = 31  # zlib's window bits for a gzip container (RFC 1952), the `.tar.gz` the reference names
LEVEL = 1  # RDB strings are LZF-compressed already: a higher level costs time and saves little


class FileBackupStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise EffectError(f"backup key {key!r} points outside the backup directory")
        return path

    async def write_archive(self, key: str, tar: AsyncIterator[bytes]) -> dict:
        final = self._path(key)
        partial = final.with_name(final.name + ".partial")
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
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
        self.file = open(path, "wb")
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
        self.file.close()
        self.path.unlink(missing_ok=True)


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
