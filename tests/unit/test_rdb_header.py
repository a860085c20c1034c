"""The replication offset an RDB file's header records (engine/rdb_header.py), read from the header of
a real file: the dump.rdb a Redis 7.0.15 replica saved at offset 2595717 (redis-check-rdb reads
`AUX FIELD repl-offset = '2595717'` in it), as it comes in a tar stream of the Docker archive API."""

from __future__ import annotations

import io
import tarfile

import pytest

from engine.rdb_header import first_member, keeping_the_start, replication_offset

# Up to its first SELECTDB: redis-ver 7.0.15, redis-bits, ctime, used-mem, repl-stream-db, repl-id,
# repl-offset (saved as a 32-bit integer), aof-base.
REPLICA_RDB_HEAD = bytes.fromhex(
    "524544495330303130fa0972656469732d76657206372e302e3135fa0a72656469732d62697473c040fa056374696d65"
    "c2c58a0f6bfa08757365642d6d656dc290345800fa0e7265706c2d73747265616d2d6462c000fa077265706c2d696428"
    "34363730623366643136336264383931333937393133656562303332633632383230633534356331fa0b7265706c2d6f"
    "6666736574c2859b2700fa08616f662d62617365c000"
) + bytes.fromhex("fe00fb0100")  # SELECTDB 0, RESIZEDB: the data begins


def tar_of(name: str, data: bytes, pax: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        if pax:
            info.pax_headers = {"comment": "x" * 600}  # an extended header before the file
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_offset_a_replicas_file_records_is_read_from_its_header():
    assert replication_offset(REPLICA_RDB_HEAD) == 2595717


@pytest.mark.parametrize("pax", [False, True], ids=["ustar", "pax"])
def test_the_file_is_found_in_the_start_of_a_tar_stream(pax):
    tar = tar_of("dump.rdb", REPLICA_RDB_HEAD + b"\x00" * 100_000, pax)
    assert replication_offset(first_member(tar[:64 * 1024])) == 2595717


@pytest.mark.parametrize("head, why", [
    (b"", "empty"),
    (b'{"keys": {}, "expires": {}}', "no RDB (the fakes' files)"),
    (REPLICA_RDB_HEAD[:140], "cut short in the name of the offset field"),
    (REPLICA_RDB_HEAD[:152], "cut short in the offset"),
    (REPLICA_RDB_HEAD[:9] + bytes.fromhex("fe00"), "no auxiliary field"),
])
def test_a_header_that_records_no_offset_says_none(head, why):
    assert replication_offset(head) is None, why


async def test_the_stream_passes_through_whole_and_its_start_is_kept():
    async def chunks():
        for i in range(0, 200_000, 7_000):
            yield bytes([i % 251]) * 7_000

    start = bytearray()
    passed = b"".join([c async for c in keeping_the_start(chunks(), start)])
    assert passed == b"".join([c async for c in chunks()])
    assert bytes(start) == passed[:64 * 1024]
