"""The control plane's archive format (adapters/storage/control_plane_archive.py): what was written is read
back; a wrong passphrase, another format, and a file altered or cut anywhere are refused, each by name."""

from __future__ import annotations

import os
import stat

import pytest

from adapters.storage import control_plane_archive as archive_module
from adapters.storage.control_plane_archive import CHUNK, HEADER_SIZE, MAGIC, TAG, PassphraseArchive
from engine.recovery_ports import ArchiveRefused, RecoveryRefused

PASSPHRASE = "correct horse battery staple"
CHEAP = PassphraseArchive(log2_n=10)  # scrypt's real cost is for archives, not for tests


def records(n: int = 3, noise: int = 0) -> list[dict]:
    """A manifest, `n` records, and incompressible noise so the archive spans several chunks."""
    return [{"manifest": {"n": n}}, *({"event": [i, os.urandom(noise).hex()]} for i in range(n)), {"end": {"n": n}}]


@pytest.fixture
def written(tmp_path):
    path, content = tmp_path / "cp.archive", records(40, noise=4096)  # about 320 KiB of hex: 3 chunks or more
    CHEAP.write(path, content, PASSPHRASE)
    return path, content


def test_what_was_written_is_read_back_whole(written):
    path, content = written
    assert path.stat().st_size > 2 * (CHUNK + TAG)  # several chunks
    assert CHEAP.read(path, PASSPHRASE) == content


def test_the_archive_is_private_and_starts_with_its_name_and_version(written):
    path, _ = written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(MAGIC + bytes([archive_module.VERSION]))


def test_an_empty_archive_reads_back(tmp_path):
    CHEAP.write(tmp_path / "a", [], PASSPHRASE)
    assert CHEAP.read(tmp_path / "a", PASSPHRASE) == []


def test_a_wrong_passphrase_is_refused_by_name_and_never_echoed(written):
    path, _ = written
    with pytest.raises(ArchiveRefused, match="wrong passphrase") as refused:
        CHEAP.read(path, "not the passphrase at all")
    assert "not the passphrase" not in str(refused.value) and PASSPHRASE not in str(refused.value)


@pytest.mark.parametrize("keep", [0, 10, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 5, HEADER_SIZE + CHUNK + TAG,
                                  HEADER_SIZE + 2 * (CHUNK + TAG), -1])
def test_a_cut_archive_is_refused(written, keep):
    path, _ = written
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(ArchiveRefused, match="truncated|not a redis-addons"):
        CHEAP.read(path, PASSPHRASE)


def test_an_archive_cut_at_a_chunk_end_says_so(written):
    path, _ = written
    path.write_bytes(path.read_bytes()[:HEADER_SIZE + CHUNK + TAG])
    with pytest.raises(ArchiveRefused, match="truncated: it ends after chunk 0, which was not the last"):
        CHEAP.read(path, PASSPHRASE)


@pytest.mark.parametrize("at", [len(MAGIC) + 2, len(MAGIC) + 10, HEADER_SIZE - 1, HEADER_SIZE + 3,
                                HEADER_SIZE + CHUNK + TAG - 1, HEADER_SIZE + CHUNK + TAG + 100, -1])
def test_an_altered_byte_anywhere_is_refused(written, at):
    path, _ = written
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="altered|wrong passphrase|impossible"):
        CHEAP.read(path, PASSPHRASE)


def test_swapped_chunks_and_a_byte_added_are_refused(written):
    path, _ = written
    data = path.read_bytes()
    header, first, second = data[:HEADER_SIZE], data[HEADER_SIZE:HEADER_SIZE + CHUNK + TAG], \
        data[HEADER_SIZE + CHUNK + TAG:HEADER_SIZE + 2 * (CHUNK + TAG)]
    path.write_bytes(header + second + first + data[HEADER_SIZE + 2 * (CHUNK + TAG):])
    with pytest.raises(ArchiveRefused, match="altered"):
        CHEAP.read(path, PASSPHRASE)
    path.write_bytes(data + b"\0")
    with pytest.raises(ArchiveRefused, match="altered|truncated"):
        CHEAP.read(path, PASSPHRASE)


def test_another_format_version_and_another_file_are_refused_by_name(written, tmp_path):
    path, _ = written
    data = bytearray(path.read_bytes())
    data[len(MAGIC)] = 9
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="format 9; this release reads format 1"):
        CHEAP.read(path, PASSPHRASE)
    (tmp_path / "other").write_bytes(b"SQLite format 3\0" + bytes(200))
    with pytest.raises(ArchiveRefused, match="not a redis-addons control-plane archive"):
        CHEAP.read(tmp_path / "other", PASSPHRASE)
    with pytest.raises(ArchiveRefused, match="no archive at"):
        CHEAP.read(tmp_path / "missing", PASSPHRASE)


def test_a_header_asking_for_a_huge_key_derivation_is_refused_before_deriving(written):
    path, _ = written
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 1] = 40  # log2(N): 2**40 would take terabytes
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="impossible key derivation"):
        CHEAP.read(path, PASSPHRASE)


def test_a_short_passphrase_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(RecoveryRefused, match="at least 12 characters"):
        CHEAP.write(tmp_path / "a", records(), "short")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_older_archive_and_leaves_no_partial_file(written, tmp_path):
    path, content = written

    def failing():
        yield {"manifest": {}}
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        CHEAP.write(path, failing(), PASSPHRASE)
    assert CHEAP.read(path, PASSPHRASE) == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_each_archive_has_a_key_of_its_own(tmp_path):
    CHEAP.write(tmp_path / "a", records(), PASSPHRASE)
    CHEAP.write(tmp_path / "b", records(), PASSPHRASE)
    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert a[len(MAGIC) + 4:HEADER_SIZE] != b[len(MAGIC) + 4:HEADER_SIZE]  # salt and check
    assert CHEAP.read(tmp_path / "a", PASSPHRASE) == CHEAP.read(tmp_path / "b", PASSPHRASE)
