"""The backup store on a real directory: archives appear whole or not at all, and read back by range."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from adapters.storage.backup_files import FileBackupStore
from engine.ports import EffectError


def a_tar(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("dump.rdb")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


async def chunks(data: bytes, size: int = 65536, fail_after: int | None = None):
    for i, start in enumerate(range(0, len(data), size)):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("the Docker engine went away mid-copy")
        yield data[start:start + size]


async def test_an_archive_is_stored_gzipped_with_its_checksum_and_reads_back_by_range(tmp_path):
    store, tar = FileBackupStore(tmp_path), a_tar(bytes(range(256)) * 4096)
    stored = await store.write_archive("my-app-1/b1/x.tar.gz", chunks(tar))
    on_disk = (tmp_path / "my-app-1/b1/x.tar.gz").read_bytes()
    assert stored == {"size": len(on_disk), "sha256": hashlib.sha256(on_disk).hexdigest(), "location": "my-app-1/b1/x.tar.gz"}
    assert gzip.decompress(on_disk) == tar
    assert b"".join([c async for c in store.read("my-app-1/b1/x.tar.gz", 10, 1000)]) == on_disk[10:1000]
    assert b"".join([c async for c in store.read_tar("my-app-1/b1/x.tar.gz")]) == tar
    assert await store.checksum("my-app-1/b1/x.tar.gz") == (stored["size"], stored["sha256"])


async def test_a_copy_that_breaks_midway_leaves_no_file_behind(tmp_path):
    store = FileBackupStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        await store.write_archive("my-app-1/b2/y.tar.gz", chunks(a_tar(b"x" * 1_000_000), fail_after=3))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert await store.checksum("my-app-1/b2/y.tar.gz") is None


async def test_deleting_removes_the_archive_and_its_directory_and_a_key_cannot_escape(tmp_path):
    store = FileBackupStore(tmp_path)
    await store.write_archive("my-app-1/b3/z.tar.gz", chunks(a_tar(b"data")))
    await store.delete("my-app-1/b3/z.tar.gz")
    await store.delete("my-app-1/b3/z.tar.gz")  # twice is harmless
    assert not (tmp_path / "my-app-1/b3").exists()
    with pytest.raises(EffectError, match="outside the backup directory"):
        await store.checksum("../../etc/passwd")


async def test_reading_a_missing_archive_says_so(tmp_path):
    with pytest.raises(EffectError, match="missing from the backup store"):
        [c async for c in FileBackupStore(tmp_path).read("my-app-1/b4/gone.tar.gz")]


async def test_a_very_repetitive_archive_inflates_in_bounded_chunks(tmp_path):
    store, tar = FileBackupStore(tmp_path), a_tar(b"\0" * 50_000_000)  # gzips to about 50 kB
    await store.write_archive("my-app-1/b5/zeros.tar.gz", chunks(tar))
    pieces = [c async for c in store.read_tar("my-app-1/b5/zeros.tar.gz")]
    assert b"".join(pieces) == tar and max(map(len, pieces)) <= 1 << 20
