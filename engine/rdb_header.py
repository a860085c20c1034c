"""What the header of an RDB file says of the replication stream it was saved at: its `repl-offset`
auxiliary field, which Redis (and Valkey) write on a replica's save. A backup taken on a replica
records that offset; reading it back from the archived file proves the file archived is the one that
save wrote, not one a full resynchronisation put in its place meanwhile (a replica receiving a full
sync renames the received RDB over its dump.rdb, whatever its save rules say).

Pure parsing of bytes already read: the first KiB of a tar stream of the Docker archive API is
enough (the auxiliary fields come first in the file, a few hundred bytes)."""

from __future__ import annotations

import tarfile
from typing import AsyncIterator

HEADER_BYTES = 64 * 1024  # more than a tar header and every auxiliary field
AUX = 0xFA  # RDB_OPCODE_AUX: a (name, value) pair of strings
MAGICS = (b"REDIS", b"VALKEY")  # then the format version in digits: REDIS0010, VALKEY080
INTEGERS = {0xC0: 1, 0xC1: 2, 0xC2: 4}  # RDB_ENC_INT8/16/32: a string saved as a little-endian integer


def is_rdb(data: bytes) -> bool:
    return data.startswith(MAGICS)


def replication_offset(rdb: bytes) -> int | None:
    """The `repl-offset` an RDB file's header records; None when it records none (a primary's file
    without replicas, a file that is no RDB, a header cut short)."""
    magic = next((m for m in MAGICS if rdb.startswith(m)), None)
    if magic is None:
        return None
    position = len(magic) + (4 if magic == b"REDIS" else 3)
    try:
        while rdb[position] == AUX:
            name, position = _string(rdb, position + 1)
            value, position = _string(rdb, position)
            if name == b"repl-offset":
                return int(value)
    except (IndexError, ValueError):
        return None
    return None


def _string(data: bytes, position: int) -> tuple[bytes, int]:
    """An RDB string at `position` (its length encoding, then its bytes) and the position after it."""
    first = data[position]
    kind = first >> 6
    if kind == 0:
        length, position = first & 0x3F, position + 1
    elif kind == 1:
        length, position = ((first & 0x3F) << 8) | data[position + 1], position + 2
    elif first in (0x80, 0x81):
        size = 4 if first == 0x80 else 8
        length, position = int.from_bytes(data[position + 1:position + 1 + size], "big"), position + 1 + size
    elif first in INTEGERS:
        size = INTEGERS[first]
        if position + 1 + size > len(data):
            raise IndexError("the header is cut short")
        number = int.from_bytes(data[position + 1:position + 1 + size], "little", signed=True)
        return str(number).encode(), position + 1 + size
    else:  # LZF-compressed: never for a number
        raise ValueError(f"an RDB string encoded {first:#x} is not read here")
    if position + length > len(data):  # its length, or its bytes, past what was read
        raise IndexError("the header is cut short")
    return data[position:position + length], position + length


def first_member(tar: bytes) -> bytes:
    """The start of the first file of a tar stream's beginning (past any PAX or GNU long-name headers)."""
    position = 0
    while position + 512 <= len(tar):
        try:
            info = tarfile.TarInfo.frombuf(tar[position:position + 512], "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            return b""
        position += 512
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            position += -(-info.size // 512) * 512
            continue
        return tar[position:position + info.size]
    return b""


async def keeping_the_start(stream: AsyncIterator[bytes], start: bytearray) -> AsyncIterator[bytes]:
    """`stream` passed through as it comes, its first HEADER_BYTES also kept in `start`."""
    async for chunk in stream:
        if len(start) < HEADER_BYTES:
            start += chunk[:HEADER_BYTES - len(start)]
        yield chunk
