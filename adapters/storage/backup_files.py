"""The BackupStore port over a local directory (by default `<data directory>/backups`).

Archives are sealed as they are written (sealed.py: AES-256-GCM in chunks, under the current key of
backup_keys.py, kept outside the store); reads open them chunk by chunk, so a download gives the plain
.tar.gz and stops at the first altered chunk. An archive written before encryption (a plain .tar.gz,
told by its first bytes) is still read as it is, until `reseal` seals it. Sizes and SHA-256 are the
.tar.gz's, so a backup's record means the same sealed, plain or resealed under another key. Each sealed
archive opens at its own key in the store only (sealed.py binds it): one copied over another is refused.
A plain one is not authenticated: it is served or sealed again only once its whole SHA-256 is the one
recorded (`recorded`, from the backup's record; they are rare).

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
import glob
import hashlib
import os
import stat
import zlib
from pathlib import Path
from typing import AsyncIterator

import structlog
from isal import isal_zlib

from adapters.storage import sealed
from adapters.storage.backup_keys import BackupKeys
from engine.ports import ArchiveAltered, EffectError
from engine.settings import SettingsError

CHUNK = 1 << 20
GZIP = 31  # zlib's window bits for a gzip container (RFC 1952), the `.tar.gz` the reference names
LEVEL = 1  # RDB strings are LZF-compressed already: a higher level costs time and saves little
DIR_MODE, FILE_MODE = 0o700, 0o600
RESEALING = ".resealing"  # `<name>.<random>.resealing`: an archive being sealed again under the current key
NO_ROOM = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}
log = structlog.get_logger("backup-store")


class FileBackupStore:
    def __init__(self, root: Path, keys: BackupKeys | None = None, chunk_size: int = sealed.CHUNK):
        """`keys` None: archives are written plain, as before encryption (the benchmark's baseline)."""
        self.root, self.keys, self.chunk_size = Path(root), keys, chunk_size
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
        # Each writer a file of its own: a driver stalled mid-write (its operation taken over by another process
        # on the same backups directory) must not write into the file the other renamed into the archive.
        partial = final.with_name(f"{final.name}.{os.urandom(4).hex()}.partial")
        await asyncio.to_thread(_make_private_dirs, self.root.resolve(), final.parent)
        sink = await asyncio.to_thread(self._sink, partial, key)
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
            await asyncio.to_thread(_remove_partials, final)  # a crashed writer's; a stalled one's fails its rename
        except BaseException:
            if pending is not None:  # the worker may still be writing: let it end before the file goes
                await asyncio.gather(pending, return_exceptions=True)
            await asyncio.to_thread(sink.discard)
            raise
        return {"size": size, "sha256": digest, "location": key}

    def _sink(self, partial: Path, key: str) -> _GzipSink:
        if self.keys and not self.keys.exist() and any(self.sealed_with(k) not in ("plain", "altered") for k in self.archives()):
            # A new key would seal new backups and leave every older one unreadable, unnoticed. Only files with a
            # sealed header count: a stray file in the store must not block every first backup.
            raise EffectError(f"the backup keyring {self.keys.path} is missing, yet the backup store holds sealed "
                              "archives: put it back from your copy (or set REDIS_ADDONS_BACKUP_KEY), then back up again")
        try:
            sealer = sealed.Sealer(self.keys.current()[1], key, self.chunk_size) if self.keys else None
        except SettingsError as e:  # a keyring file spoilt: no backup without a key to seal it
            raise EffectError(str(e)) from None
        return _GzipSink(partial, sealer)

    async def read(self, key: str, start: int = 0, end: int | None = None,
                   recorded: tuple[int, str] | None = None) -> AsyncIterator[bytes]:
        try:
            archive = await asyncio.to_thread(_Archive, self._path(key), key, self.keys)
        except (FileNotFoundError, NotADirectoryError):
            raise EffectError(f"backup archive {key} is missing from the backup store") from None
        try:
            await asyncio.to_thread(archive.check, recorded)
            pieces = archive.pieces(start, end)
            while chunk := await asyncio.to_thread(next, pieces, b""):
                yield chunk
        finally:
            await asyncio.to_thread(archive.close)

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
            return await asyncio.to_thread(_digest, self._path(key), key, self.keys)
        except (FileNotFoundError, NotADirectoryError):
            return None

    # -- key rotation (the `backup-key` command, beside a running engine or not) -------------

    def archives(self) -> list[str]:
        """The key of every whole archive in the store."""
        root = self.root.resolve()
        if not root.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and not p.name.endswith((".partial", RESEALING)))

    def unfinished(self) -> list[str]:
        """Every archive being written: a backup's `.partial`, a reseal's temporary file (or one a crash left)."""
        root = self.root.resolve()
        if not root.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and p.name.endswith((".partial", RESEALING)))

    def sealed_with(self, key: str) -> str:
        """The ID (hex) of the key an archive is sealed with, or "plain" (written before encryption)."""
        with open(self._path(key), "rb") as handle:
            first = handle.read(sealed.HEADER.size)
        kind = sealed.kind_of(first)
        if kind == "sealed":
            return sealed.HEADER.unpack_from(first)[3].hex() if len(first) == sealed.HEADER.size else "altered"
        return "plain" if kind == "plain" else "altered"

    def reseal(self, key: str, recorded: tuple[int, str] | None = None) -> bool:
        """The archive sealed again under the current key, its .tar.gz unchanged (checked before it replaces
        the old file): False when it already was. Each chunk of the old one is authenticated as it is read; a
        plain one is sealed only when `recorded` (its backup's size and SHA-256) says it is the one made."""
        current_id, current_key = self.keys.current()
        if self.sealed_with(key) == current_id.hex():
            return False
        path = self._path(key)
        archive = _Archive(path, key, self.keys)
        try:
            if archive.shape is None and recorded is None:
                raise EffectError(f"backup archive {key} is a plain .tar.gz that no backup records: left as it was "
                                  "(unauthenticated, it could be any file written over a sealed archive)")
            archive.check(recorded)
            # A name of its own: two `reencrypt` at once must not write into one file.
            partial = path.with_name(f"{path.name}.{os.urandom(4).hex()}{RESEALING}")
            sink = _GzipSink(partial, sealed.Sealer(current_key, key, self.chunk_size), compress=False)
            try:
                for piece in archive.pieces(0, None):
                    sink.add(piece)
                inode = os.fstat(archive.handle.fileno()).st_ino
                if sink.finish() != _digest(partial, key, self.keys):
                    raise EffectError(f"backup archive {key} read back differently once sealed again: left as it was")
                if os.stat(path).st_ino != inode:  # deleted (or written again) meanwhile: not brought back
                    raise FileNotFoundError(path)
                os.replace(partial, path)
            except BaseException:
                sink.discard()
                raise
        finally:
            archive.close()
        return True

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            # A writer killed mid-way leaves its .partial, a reseal its `<name>.<random>.resealing`.
            resealing = await asyncio.to_thread(lambda: list(path.parent.glob(glob.escape(path.name) + "*" + RESEALING)))
            for leftover in (path, *resealing):
                await asyncio.to_thread(leftover.unlink, missing_ok=True)
            await asyncio.to_thread(_remove_partials, path)
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
    """Compresses, hashes the .tar.gz, seals and writes one archive (called from a worker thread).
    `compress` False: what is added is a .tar.gz already (an archive sealed again)."""

    def __init__(self, path: Path, sealer: sealed.Sealer | None, compress: bool = True):
        self.path, self.sealer = path, sealer
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # the umask may take bits off; a .partial left by a crash may be wider
        self.file = os.fdopen(fd, "wb")
        if sealer:  # the header at once: `backup-key drop` reads which key a file being written uses
            try:
                self.file.write(sealer.add(b""))
                self.file.flush()
            except BaseException:  # a store full to the last byte: no empty .partial, no open file left
                self.discard()
                raise
        # ISA-L's deflate: the same gzip format at ~8x zlib's speed (bench/backup.py measures both).
        self.zip = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, GZIP) if compress else None
        self.digest, self.size = hashlib.sha256(), 0

    def _write(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.size += len(data)
            self.file.write(self.sealer.add(data) if self.sealer else data)

    def add(self, chunk: bytes) -> None:
        self._write(self.zip.compress(chunk) if self.zip else chunk)

    def finish(self) -> tuple[int, str]:
        if self.zip:
            self._write(self.zip.flush())
        if self.sealer:
            self.file.write(self.sealer.finish())
        self.file.flush()
        os.fsync(self.file.fileno())  # a backup said done is on disk
        self.file.close()
        return self.size, self.digest.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a full disk refuses the buffered rest at close too: the file goes anyway
            self.file.close()
        self.path.unlink(missing_ok=True)


def _remove_partials(final: Path) -> None:
    """The writers' files of the archive `final` (`<name>.partial` as an earlier release named them)."""
    for partial in final.parent.glob(glob.escape(final.name) + "*.partial"):
        partial.unlink(missing_ok=True)


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


class _Archive:
    """One stored archive opened for reading (in a worker thread): sealed, or plain from before encryption."""

    def __init__(self, path: Path, key: str, keys: BackupKeys | None):
        self.key, self.handle = key, open(path, "rb")
        try:
            size = os.fstat(self.handle.fileno()).st_size
            first = self.handle.read(sealed.HEADER.size)
            self.kind, self.shape, self.opener = sealed.kind_of(first), None, None
            if self.kind == "unknown":
                raise ArchiveAltered(f"backup archive {key} is altered on disk at byte 0: neither sealed nor a "
                                     ".tar.gz", at=0)
            if self.kind == "sealed":
                self.shape = sealed.layout(key, first, size)
                if keys is None:
                    raise EffectError(f"backup archive {key} is sealed and this store has no backup keys")
                try:
                    self.opener = sealed.Opener(key, self.shape, keys.get)
                except SettingsError as e:
                    raise EffectError(str(e)) from None
            self.size = self.shape.plain_size if self.shape else size
        except BaseException:
            self.handle.close()
            raise

    def check(self, recorded: tuple[int, str] | None) -> None:
        """The archive is the one `recorded` (size, SHA-256) before any of it is given: a sealed one's .tar.gz as
        long (its chunks are authenticated as they are read); a plain one, unauthenticated, hashed whole."""
        if recorded is None:
            return
        size, sha256 = recorded
        if self.shape is not None:
            if self.size != size:
                at = self.shape.stored_size if self.size < size else 0  # cut there; or another, longer archive
                raise ArchiveAltered(f"backup archive {self.key} is altered on disk at byte {at}: it holds {self.size} "
                                     f"bytes of .tar.gz where {size} were recorded", at=at)
            return
        digest = hashlib.sha256()
        for piece in self.pieces(0, None):
            digest.update(piece)
        if (self.size, digest.hexdigest()) != (size, sha256):
            raise ArchiveAltered(f"backup archive {self.key} is altered on disk at byte 0: a plain .tar.gz that is not "
                                 f"the one recorded (SHA-256 {digest.hexdigest()[:12]}, recorded {sha256[:12]})", at=0)

    def pieces(self, start: int, end: int | None):
        """The .tar.gz's bytes [start, end) in pieces of at most a chunk."""
        if self.shape is not None and end is not None and end > self.size:  # cut (at a chunk's end, say)
            raise ArchiveAltered(f"backup archive {self.key} is altered on disk at byte {self.shape.stored_size}: its "
                                 f".tar.gz ends at byte {self.size}, before the {end} asked for", at=self.shape.stored_size)
        end = self.size if end is None else min(end, self.size)
        if self.shape is not None and self.size == 0:  # nothing to give, but its one chunk is checked all the same
            self.handle.seek(self.shape.span(0)[0])
            self.opener.open(0, self.handle.read())
        if start >= end:
            return
        if self.shape is None:
            self.handle.seek(start)
            while start < end and (piece := self.handle.read(min(CHUNK, end - start))):
                start += len(piece)
                yield piece
            return
        index = self.shape.chunk_at(start)
        while start < end:
            offset, length = self.shape.span(index)
            self.handle.seek(offset)
            plain = self.opener.open(index, self.handle.read(length))
            skip = start - index * self.shape.chunk_size
            piece = plain[skip:skip + end - start]
            start += len(piece)
            index += 1
            yield piece

    def close(self) -> None:
        self.handle.close()


def _digest(path: Path, key: str, keys: BackupKeys | None) -> tuple[int, str]:
    """(size, SHA-256) of the archive's .tar.gz, every chunk authenticated on the way."""
    digest, size = hashlib.sha256(), 0
    archive = _Archive(path, key, keys)
    try:
        for piece in archive.pieces(0, None):
            digest.update(piece)
            size += len(piece)
    finally:
        archive.close()
    return size, digest.hexdigest()
