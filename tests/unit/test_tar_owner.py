"""adapters/docker/tar_owner.py: every entry of a tar stream re-owned as it passes, contents untouched."""

from __future__ import annotations

import asyncio
import io
import tarfile

from adapters.docker.tar_owner import owned_by


def a_tar(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data, uid in (("appendonlydir", None, 0), ("appendonlydir/" + "x" * 120 + ".aof", b"a" * 1500, 0),
                                ("dump.rdb", b"REDIS0009" + bytes(range(256)) * 40, 1000), ("empty", b"", 0)):
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.uname, info.gname = uid, uid, "root", "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def passed(data: bytes, size: int) -> bytes:
    async def chunks():
        for at in range(0, len(data), size):
            yield data[at:at + size]
    return b"".join([chunk async for chunk in owned_by(chunks(), 999, 998)])


def members(data: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.uid, m.gid, m.uname, m.size, m.isdir() or tar.extractfile(m).read()) for m in tar]


def test_every_entry_gets_the_owner_whatever_the_chunks_and_the_format():
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):  # what Docker writes for a long path
        original = a_tar(fmt)
        before = members(original)
        for size in (1, 7, 512, 513, 4096, len(original)):
            after = members(asyncio.run(passed(original, size)))
            assert after == [(name, 999, 998, "", length, content) for name, _, _, _, length, content in before]


def test_a_pax_record_naming_an_owner_is_taken_out():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("dump.rdb")
        info.uid, info.size = 3_000_000, 3  # too big for the ustar field: tarfile writes it as a PAX record
        info.pax_headers = {"uname": "someone", "comment": "kept"}
        tar.addfile(info, io.BytesIO(b"abc"))
    with tarfile.open(fileobj=io.BytesIO(asyncio.run(passed(buffer.getvalue(), 100)))) as tar:
        [member] = tar.getmembers()
        assert (member.uid, member.gid, member.uname, member.pax_headers.get("comment")) == (999, 998, "", "kept")
        assert tar.extractfile(member).read() == b"abc"
