"""The sealed archive format (adapters/storage/sealed.py) through the file store: a round trip, and every
way of altering the stored bytes refused — the header, a chunk, a tag, truncation, chunks reordered, dropped
or added, another key — by a read, a range and the whole-archive check alike."""

from __future__ import annotations

import asyncio
import base64
import errno
import gzip
import hashlib
import os

import pytest
from structlog.testing import capture_logs

from adapters.storage import sealed
from adapters.storage.backup_files import RESEALING, FileBackupStore
from adapters.storage.backup_keys import BackupKeys
from engine.ports import ArchiveAltered, EffectError
from engine.settings import SettingsError
from tests.integration.test_backup_store import a_tar as tar_of

CHUNK = 1024  # small chunks: a few dozen in a test archive
KEY = "my-app-1/b1/x.tar.gz"
SECRET_NAME = b"customer-secret-key-name"


def a_tar() -> bytes:
    return tar_of(b"REDIS0011" + SECRET_NAME + os.urandom(40_000))  # random: gzip leaves it about as long


async def chunks(data: bytes, size: int = 7000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.fixture
def keys(tmp_path):
    return BackupKeys(tmp_path / "backup-keys.json")


@pytest.fixture
async def stored(tmp_path, keys):
    """(store, the tar, what write_archive answered, the stored file)."""
    store, tar = FileBackupStore(tmp_path / "backups", keys, chunk_size=CHUNK), a_tar()
    answer = await store.write_archive(KEY, chunks(tar))
    return store, tar, answer, tmp_path / "backups" / KEY


async def read_all(store, start=0, end=None) -> bytes:
    return b"".join([c async for c in store.read(KEY, start, end)])


async def test_an_archive_round_trips_and_its_stored_bytes_reveal_nothing(stored, keys):
    store, tar, answer, path = stored
    on_disk = path.read_bytes()
    assert on_disk.startswith(sealed.MAGIC)
    for clear in (b"REDIS0", SECRET_NAME, b"dump.rdb", b"\x1f\x8b\x08\x00"):  # the RDB's, the test's, tar's, gzip's
        assert clear not in on_disk
    plain = await read_all(store)
    assert gzip.decompress(plain) == tar
    assert answer == {"size": len(plain), "sha256": hashlib.sha256(plain).hexdigest(), "location": KEY}
    assert await store.checksum(KEY) == (answer["size"], answer["sha256"])
    assert b"".join([c async for c in store.read_tar(KEY)]) == tar
    for start, end in ((0, 1), (1000, 3000), (CHUNK, 2 * CHUNK), (len(plain) - 5, None), (17, len(plain))):
        assert await read_all(store, start, end) == plain[start:end]
    assert len(on_disk) == sealed.HEADER.size + len(plain) + -(-len(plain) // CHUNK) * sealed.TAG
    assert store.sealed_with(KEY) == keys.current()[0].hex()
    assert (keys.path.stat().st_mode & 0o777) == 0o600


async def test_a_tar_gz_of_whole_chunks_and_an_empty_one_round_trip(tmp_path, keys):
    store = FileBackupStore(tmp_path, keys, chunk_size=CHUNK)
    for n, data in enumerate((b"", b"x" * 10)):
        stored = await store.write_archive(f"a/{n}/x.tar.gz", chunks(data))
        assert b"".join([c async for c in store.read_tar(f"a/{n}/x.tar.gz")]) == data
        assert await store.checksum(f"a/{n}/x.tar.gz") == (stored["size"], stored["sha256"])
    sealer, body = sealed.Sealer(keys.current()[1], "a/3/x.tar.gz", CHUNK), os.urandom(3 * CHUNK)  # three chunks
    (tmp_path / "a/3").mkdir(parents=True)
    (tmp_path / "a/3/x.tar.gz").write_bytes(sealer.add(body[:CHUNK]) + sealer.add(body[CHUNK:]) + sealer.finish())
    assert b"".join([c async for c in store.read("a/3/x.tar.gz")]) == body


def altered(path, change) -> None:
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(change(data)))


def flip(at: int):
    def change(data):
        data[at] ^= 0x01
        return data
    return change


def span(i: int) -> slice:
    start = sealed.HEADER.size + i * (CHUNK + sealed.TAG)
    return slice(start, start + CHUNK + sealed.TAG)


def swap_chunks(data):
    one, two = bytes(data[span(1)]), bytes(data[span(2)])
    data[span(1)], data[span(2)] = two, one
    return data


ALTERATIONS = {
    "magic": (flip(0), 0),
    "version": (flip(8), 8),
    "chunk size": (flip(11), None),  # the chunks then lie elsewhere: the first one fails
    "key ID": (flip(14), None),  # another key, which the keyring does not hold
    "salt": (flip(40), sealed.HEADER.size),
    "a byte of chunk 3": (flip(sealed.HEADER.size + 2 * (CHUNK + sealed.TAG) + 100), span(2).start),
    "a tag": (flip(span(4).stop - 1), span(4).start),
    "chunks 2 and 3 swapped": (swap_chunks, span(1).start),
    "chunk 2 dropped": (lambda d: d[:span(1).start] + d[span(2).start:], span(1).start),
    "cut at a chunk's end": (lambda d: d[:span(5).start], span(4).start),
    "cut inside a chunk": (lambda d: d[:span(5).start + 100], span(5).start),
    "cut inside the header": (lambda d: d[:20], 20),
    "a chunk added": (lambda d: d + d[span(1)], None),
}


@pytest.mark.parametrize("what", ALTERATIONS)
async def test_an_altered_archive_is_refused_by_the_check_and_by_a_read(stored, what):
    store, _, answer, path = stored
    change, at = ALTERATIONS[what]
    altered(path, change)
    for attempt in (store.checksum(KEY), read_all(store)):
        with pytest.raises(EffectError) as refused:
            await attempt
        if what == "key ID":
            assert "which the keyring does not hold" in str(refused.value)
        else:
            assert isinstance(refused.value, ArchiveAltered), refused.value
            assert f"altered on disk at byte {refused.value.at}" in str(refused.value)
            assert at is None or refused.value.at == at


async def test_a_read_gives_the_chunks_before_the_altered_one_then_stops(stored):
    store, _, _, path = stored
    altered(path, flip(span(3).start + 5))
    given = []
    with pytest.raises(ArchiveAltered, match=f"altered on disk at byte {span(3).start}: chunk 4 of"):
        async for piece in store.read(KEY):
            given.append(piece)
    assert len(b"".join(given)) == 3 * CHUNK
    assert await read_all(store, 4 * CHUNK) != b""  # a range past the altered chunk is not refused: each chunk stands alone


async def test_another_key_opens_nothing(stored, tmp_path):
    store, _, _, path = stored
    other = BackupKeys(tmp_path / "other.json")
    wrong = bytearray(other.current()[1])
    with pytest.raises(EffectError, match="which the keyring does not hold"):
        await FileBackupStore(tmp_path / "backups", other).checksum(KEY)
    shape = sealed.layout(KEY, path.read_bytes(), path.stat().st_size)
    opener = sealed.Opener(KEY, shape, lambda kid: bytes(wrong))  # a wrong key under the right ID
    with pytest.raises(ArchiveAltered, match="chunk 1 of"):
        opener.open(0, path.read_bytes()[slice(*(lambda o, n: (o, o + n))(*shape.span(0)))])


async def test_a_plain_archive_from_before_encryption_still_reads_and_is_sealed_again(tmp_path, keys):
    plain_store, tar = FileBackupStore(tmp_path, None), a_tar()
    answer = await plain_store.write_archive(KEY, chunks(tar))
    assert (tmp_path / KEY).read_bytes()[:2] == b"\x1f\x8b"
    store = FileBackupStore(tmp_path, keys, chunk_size=CHUNK)
    assert store.sealed_with(KEY) == "plain" and await store.checksum(KEY) == (answer["size"], answer["sha256"])
    recorded = (answer["size"], answer["sha256"])
    assert b"".join([c async for c in store.read(KEY, recorded=recorded)]) == (tmp_path / KEY).read_bytes()
    assert store.reseal(KEY, recorded) is True and store.reseal(KEY, recorded) is False
    assert store.sealed_with(KEY) == keys.current()[0].hex() and SECRET_NAME not in (tmp_path / KEY).read_bytes()
    assert await store.checksum(KEY) == (answer["size"], answer["sha256"])


async def test_rotation_keeps_old_archives_readable_until_resealed_and_the_old_key_dropped(stored, keys):
    store, tar, answer, path = stored
    old = keys.current()[0].hex()
    new = keys.rotate()
    assert new != old and [k for k, current in keys.ids() if current] == [new]
    assert await store.checksum(KEY) == (answer["size"], answer["sha256"])  # under the old key still
    second = await store.write_archive("my-app-1/b2/y.tar.gz", chunks(tar))
    assert store.sealed_with("my-app-1/b2/y.tar.gz") == new
    assert [store.reseal(k) for k in store.archives()] == [True, False]
    keys.drop(old)
    assert [k for k, _ in keys.ids()] == [new]
    assert await store.checksum(KEY) == (answer["size"], answer["sha256"])
    assert await store.checksum("my-app-1/b2/y.tar.gz") == (second["size"], second["sha256"])
    with pytest.raises(SettingsError, match="is the current one"):
        keys.drop(new)


async def test_an_altered_archive_is_not_resealed(stored):
    store, _, _, path = stored
    store.keys.rotate()
    altered(path, flip(span(2).start))
    before = path.read_bytes()
    with pytest.raises(ArchiveAltered):
        store.reseal(KEY)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]


async def test_keys_from_the_environment(tmp_path):
    first, second = os.urandom(32), os.urandom(32)
    value = f"{base64.b64encode(first).decode()}, {base64.b64encode(second).decode()}"
    keys = BackupKeys(tmp_path / "backup-keys.json", value)
    assert keys.current() == (sealed.key_id(first), first) and keys.get(sealed.key_id(second)) == second
    assert not keys.path.exists()  # never written with the variable set
    with pytest.raises(SettingsError, match="REDIS_ADDONS_BACKUP_KEY"):
        keys.rotate()
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SettingsError, match="key 1 is not 32 bytes in base64") as refused:
            BackupKeys(tmp_path / "k.json", bad)
        assert bad not in str(refused.value)


def test_a_malformed_keyring_is_named(tmp_path):
    path = tmp_path / "backup-keys.json"
    path.write_text('{"current": "00", "keys": {}}')
    with pytest.raises(SettingsError, match="backup-keys.json"):
        BackupKeys(path).current()


async def test_a_lost_keyring_is_not_replaced_while_sealed_archives_remain(stored, keys):
    store, tar, _, _ = stored
    keys.path.unlink()
    with pytest.raises(EffectError, match="backup keyring .*backup-keys.json is missing, yet the backup store holds sealed"):
        await store.write_archive("my-app-1/b2/y.tar.gz", chunks(tar))
    assert keys.ids() == [] and not keys.path.exists()  # looking does not make a new key either
    assert store.archives() == [KEY]  # nothing of the refused backup left


async def test_a_stray_file_in_a_new_store_does_not_block_the_first_backup(tmp_path, keys):
    store = FileBackupStore(tmp_path / "store", keys)
    (tmp_path / "store" / "my-app-1").mkdir(parents=True)
    (tmp_path / "store" / "my-app-1" / "notes.txt").write_text("an operator's note, not an archive")
    await store.write_archive(KEY, chunks(a_tar()))
    assert store.sealed_with(KEY) == keys.ids()[0][0]


async def test_an_archive_of_another_backup_at_this_path_is_refused(stored):
    """Each archive opens at its own location only: another backup's, copied over this one's path, is refused
    (the same size: by its first chunk; longer: before any byte, by the size recorded)."""
    store, tar, answer, path = stored
    recorded = (answer["size"], answer["sha256"])
    for other, data in (("my-app-2/b9/x.tar.gz", tar), ("my-app-2/b8/x.tar.gz", tar + a_tar())):
        foreign = await store.write_archive(other, chunks(data))
        path.write_bytes((store.root / other).read_bytes())
        for attempt in (store.checksum(KEY), read_all(store), read_all(store, 2 * CHUNK, answer["size"])):
            with pytest.raises(ArchiveAltered, match=f"backup archive {KEY} is altered on disk at byte"):
                await attempt
        with pytest.raises(ArchiveAltered) as refused:
            async for _ in store.read(KEY, recorded=recorded):
                pytest.fail("a byte of another backup's archive was given")
        if foreign["size"] != answer["size"]:
            assert f"it holds {foreign['size']} bytes of .tar.gz where {answer['size']} were recorded" in str(refused.value)
        store.keys.rotate()
        with pytest.raises(ArchiveAltered):
            store.reseal(KEY, recorded)


async def test_an_archive_cut_at_a_chunks_end_is_refused_for_a_range_past_its_end(stored):
    """A resumed download asks for bytes the cut archive no longer has: refused, not answered with nothing."""
    store, _, answer, path = stored
    altered(path, lambda d: d[:span(3).start])
    with pytest.raises(ArchiveAltered, match=f"at byte {span(3).start}: its .tar.gz ends at byte {3 * CHUNK}"):
        await read_all(store, 3 * CHUNK + 10, answer["size"])
    with pytest.raises(ArchiveAltered, match=f"at byte {span(3).start}: it holds {3 * CHUNK} bytes of .tar.gz where"):
        async for _ in store.read(KEY, 3 * CHUNK + 10, answer["size"], recorded=(answer["size"], answer["sha256"])):
            pass


async def test_a_plain_tar_gz_written_over_a_sealed_archive_is_neither_served_nor_sealed(stored):
    store, _, answer, path = stored
    recorded = (answer["size"], answer["sha256"])
    path.write_bytes(gzip.compress(b"someone else's data"))
    with pytest.raises(ArchiveAltered, match="at byte 0: a plain .tar.gz that is not the one recorded"):
        async for _ in store.read(KEY, recorded=recorded):
            pytest.fail("a byte of the unrecorded file was given")
    store.keys.rotate()
    before = path.read_bytes()
    with pytest.raises(ArchiveAltered, match="not the one recorded"):
        store.reseal(KEY, recorded)
    with pytest.raises(EffectError, match="a plain .tar.gz that no backup records"):
        store.reseal(KEY)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]


async def test_a_backup_being_written_shows_its_key_at_once_and_a_reseals_leftover_is_removed(stored):
    store, tar, _, path = stored
    sink = await asyncio.to_thread(store._sink, path.with_name("y.tar.gz.partial"), "my-app-1/b1/y.tar.gz")
    try:
        assert store.unfinished() == ["my-app-1/b1/y.tar.gz.partial"]
        assert store.sealed_with("my-app-1/b1/y.tar.gz.partial") == store.keys.current()[0].hex()
    finally:
        sink.discard()
    store.keys.rotate()
    leftover = path.with_name(path.name + ".0123abcd" + RESEALING)
    leftover.write_bytes(b"a reseal killed mid-way")
    assert store.archives() == [KEY] and store.reseal(KEY) is True  # its own temporary name, beside the leftover
    await store.delete(KEY)
    assert not path.parent.exists()


def test_the_keyring_made_and_tightened_is_logged_and_its_rename_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.path.isdir(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    keys = BackupKeys(tmp_path / "backup-keys.json")
    with capture_logs() as logs:
        kid = keys.current()[0]
        keys.current()
    assert synced == [False, True]  # the file, then its directory (the rename)
    assert [(e["log_level"], e["path"], e["key_id"]) for e in logs] == [("warning", str(keys.path), kid.hex())]
    assert "keep a copy elsewhere" in logs[0]["event"]
    os.chmod(keys.path, 0o644)
    with capture_logs() as logs:
        BackupKeys(keys.path).current()
    assert [(e["log_level"], e["mode"]) for e in logs] == [("warning", "0o644")]
    assert (keys.path.stat().st_mode & 0o777) == 0o600


async def test_a_store_full_to_the_last_byte_leaves_no_empty_partial_nor_an_open_file(tmp_path, keys, monkeypatch):
    """The header is written at once: on a store with no byte left its flush failed (ENOSPC) in the sink's
    constructor, before the writer's cleanup could know of it: an empty .partial stayed, its file open."""
    opened = []

    class NoRoom:
        def __init__(self, file):
            self.file, self.closed = file, False
            opened.append(self)

        def write(self, data):
            return len(data)  # buffered: the disk is asked at the flush

        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.closed = True
            self.file.close()

    def fdopen(fd, mode, fdopen=os.fdopen):  # the archive's file only (the keyring is made on the way)
        file = fdopen(fd, mode)
        return NoRoom(file) if os.readlink(f"/proc/self/fd/{fd}").endswith(".partial") else file

    monkeypatch.setattr(os, "fdopen", fdopen)
    store = FileBackupStore(tmp_path / "backups", keys, chunk_size=CHUNK)

    with pytest.raises(EffectError, match=r"the backup store's disk is full \(No space left on device\)"):
        await store.write_archive(KEY, chunks(a_tar()))

    assert [o.closed for o in opened] == [True]
    assert [p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()] == []
