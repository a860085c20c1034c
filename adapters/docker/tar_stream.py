"""Hash the files of a tar stream as it arrives, without holding it in memory.

The Docker archive API answers with a plain tar (ustar, with PAX or GNU long-name records
for long paths); the standard library's tarfile wants a blocking file, so the few header
rules needed are read here.
"""

from __future__ import annotations

import hashlib

BLOCK = 512


class _Reader:
    def __init__(self, stream):
        self._stream, self._buffer = stream, bytearray()

    async def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = await self._stream.read(max(n - len(self._buffer), 1 << 16))
            if not chunk:
                raise ValueError("tar stream ended in the middle of a record")
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


def _field(header: bytes, start: int, length: int) -> str:
    return header[start:start + length].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _size(header: bytes) -> int:
    raw = header[124:136]
    if raw[0] & 0x80:  # base-256 for large files
        return int.from_bytes(raw[1:], "big")
    return int(raw.strip(b"\0 ") or b"0", 8)


def _name(header: bytes) -> str:
    prefix = _field(header, 345, 155) if header[257:262] == b"ustar" else ""
    return f"{prefix}/{_field(header, 0, 100)}" if prefix else _field(header, 0, 100)


def _pax_path(data: bytes) -> str | None:
    for record in data.decode("utf-8", "surrogateescape").splitlines():
        _, _, pair = record.partition(" ")
        key, _, value = pair.partition("=")
        if key == "path":
            return value
    return None


async def tar_file_digests(stream) -> dict[str, tuple[int, str]]:
    reader, digests, long_name = _Reader(stream), {}, None
    while True:
        header = await reader.read(BLOCK)
        if header == b"\0" * BLOCK:
            return digests
        kind, size = header[156:157], _size(header)
        name = long_name or _name(header)
        long_name = None
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if kind in (b"x", b"L"):
            data = (await reader.read(padded))[:size]
            long_name = _pax_path(data) if kind == b"x" else data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if kind in (b"0", b"\0"):
            digest, left = hashlib.sha256(), size
            while left:
                chunk = await reader.read(min(left, 1 << 20))
                digest.update(chunk)
                left -= len(chunk)
            await reader.read(padded - size)
            digests[name] = (size, digest.hexdigest())
        else:
            await reader.read(padded)
