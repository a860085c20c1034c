"""Give every entry of a tar stream one owner as it passes, without holding it in memory.

A node's server runs as its image's user, not root: the files the engine puts in its volumes (a
copy of another node's data, a restored RDB) must be that user's, whoever owned them where they
came from (a node of an earlier release ran as root and wrote root's files). Docker extracts a
tar with the owners its headers name, so the headers are rewritten on the way: the ustar uid,
gid and names, and any owner a PAX record names (Docker writes PAX records for long paths).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.docker.tar_stream import BLOCK, _Reader, _size

OWNER_KEYS = {"uid", "gid", "uname", "gname"}


def _checksummed(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def owned_header(header: bytes, uid: int, gid: int) -> bytes:
    """The header block with this owner (numeric: names left empty, the image's /etc/passwd names them)."""
    block = bytearray(header)
    block[108:116] = b"%07o\0" % uid
    block[116:124] = b"%07o\0" % gid
    if block[257:262] == b"ustar":
        block[265:329] = b"\0" * 64
    return _checksummed(block)


def pax_without_owner(data: bytes) -> bytes:
    """PAX records but those naming an owner (each record is "<length> key=value\\n")."""
    kept, at = [], 0
    while at < len(data):
        length = int(data[at:data.index(b" ", at)])
        record = data[at:at + length]
        key = record.split(b" ", 1)[1].split(b"=", 1)[0].decode("utf-8", "surrogateescape")
        if key not in OWNER_KEYS:
            kept.append(record)
        at += length
    return b"".join(kept)


def _sized(header: bytes, size: int) -> bytes:
    block = bytearray(header)
    block[124:136] = b"%011o\0" % size
    return _checksummed(block)


async def owned_by(chunks: AsyncIterator[bytes], uid: int, gid: int) -> AsyncIterator[bytes]:
    """The tar of `chunks`, every entry owned by uid:gid; file contents pass untouched."""
    buffer, content_left = bytearray(), 0
    async for chunk in chunks:
        buffer += chunk
        while True:
            if content_left:  # a file's content (and its padding): passed on as it comes
                passing = bytes(buffer[:content_left])
                del buffer[:len(passing)]
                content_left -= len(passing)
                if passing:
                    yield passing
                if content_left:
                    break
            if len(buffer) < BLOCK:
                break
            header = bytes(buffer[:BLOCK])
            if header == b"\0" * BLOCK:  # the end: the zero blocks pass as they are
                yield bytes(buffer)
                buffer.clear()
                break
            size, kind = _size(header), header[156:157]
            padded = (size + BLOCK - 1) // BLOCK * BLOCK
            if kind in (b"x", b"g"):  # PAX records: read whole (small), owners taken out
                if len(buffer) < BLOCK + padded:
                    break
                records = pax_without_owner(bytes(buffer[BLOCK:BLOCK + size]))
                del buffer[:BLOCK + padded]
                yield owned_header(_sized(header, len(records)), uid, gid)
                yield records + b"\0" * (-len(records) % BLOCK)
                continue
            del buffer[:BLOCK]
            yield owned_header(header, uid, gid)
            content_left = padded
    if buffer:
        yield bytes(buffer)


def _number(field: bytes) -> int:
    if field[0] & 0x80:  # base-256
        return int.from_bytes(field[1:], "big")
    return int(field.strip(b"\0 ") or b"0", 8)


def _pax_owner(data: bytes) -> dict[str, int]:
    found = {}
    for record in data.decode("utf-8", "surrogateescape").splitlines():
        key, _, value = record.partition(" ")[2].partition("=")
        if key in ("uid", "gid") and value.isdigit():
            found[key] = int(value)
    return found


async def tar_owners(stream) -> set[tuple[int, int]]:
    """Every (uid, gid) the entries of a tar stream name, its contents read and dropped."""
    reader, owners, pax = _Reader(stream), set(), {}
    while True:
        header = await reader.read(BLOCK)
        if header == b"\0" * BLOCK:
            return owners
        size, kind = _size(header), header[156:157]
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if kind == b"x":
            pax = _pax_owner((await reader.read(padded))[:size])
            continue
        if kind not in (b"g", b"L", b"K"):
            owners.add((pax.get("uid", _number(header[108:116])), pax.get("gid", _number(header[116:124]))))
        pax = {}
        left = padded
        while left:
            left -= len(await reader.read(min(left, 1 << 20)))
