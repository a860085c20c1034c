"""The sealed archive: a backup's .tar.gz encrypted at rest (AES-256-GCM in chunks, `cryptography`).

    header   magic "RASEALED" | version (1 byte) | chunk size (u32) | key ID (8 bytes) | salt (32 bytes)
    chunks   each `chunk size` bytes of the .tar.gz (the last one 0 to `chunk size`), encrypted, then
             its 16-byte GCM tag; nothing else

Each archive has a key of its own, HKDF-SHA256(backup key, salt, info naming its location in the store,
`<addon>/<backup id>/<name>`): chunk i's nonce is then simply i (unique under that key), a chunk of one
archive means nothing in another, and a whole archive copied over another's path opens there not at all
(version 1 did not bind the location: its archives are refused, they only ever existed in development). Each chunk's associated
data is the whole header, its index and whether it is the last one: a changed header, a chunk altered,
swapped, dropped, added, or the archive cut at any byte fails a tag. The reader knows which chunk is the
last from the file's size alone, so a chunk can be opened on its own (a download resumed mid-archive)
and the .tar.gz's size is known without reading it.

This module holds the format only (no files, no keys' storage): backup_files.py reads and writes it,
backup_keys.py keeps the keys.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.ports import ArchiveAltered, EffectError

MAGIC = b"RASEALED"
GZIP_MAGIC = b"\x1f\x8b"  # an archive written before encryption: a plain .tar.gz
VERSION = 2  # 2: the location is bound into each archive's key
HEADER = struct.Struct(">8sBI8s32s")
TAG = 16
CHUNK = 1 << 20
MIN_CHUNK, MAX_CHUNK = 1 << 10, 1 << 26  # a header naming another size was altered
KEY_SIZE = 32
_INFO = b"redis-addons backup archive v2\0"


def key_id(key: bytes) -> bytes:
    """A key's 8-byte ID, in headers and keyrings: derived from the key (one-way), so it never needs recording."""
    return hashlib.sha256(b"redis-addons backup key id\0" + key).digest()[:8]


def _archive_key(key: bytes, salt: bytes, location: str) -> AESGCM:
    info = _INFO + location.encode()
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(key))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _associated(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, final)


class Sealer:
    """Seals a stream of bytes: feed `add`, end with `finish`; each returns the bytes to write next
    (the header comes with the first call). `location`: the archive's key in the store, where alone it opens."""

    def __init__(self, key: bytes, location: str, chunk_size: int = CHUNK):
        salt = os.urandom(32)
        self.header = HEADER.pack(MAGIC, VERSION, chunk_size, key_id(key), salt)
        self.aead, self.chunk_size = _archive_key(key, salt, location), chunk_size
        self.pending, self.index, self.started = bytearray(), 0, False

    def _out(self, sealed: list[bytes]) -> bytes:
        if not self.started:
            self.started = True
            sealed.insert(0, self.header)
        return b"".join(sealed)

    def _seal(self, data: bytes | memoryview, final: bool) -> bytes:
        sealed = self.aead.encrypt(_nonce(self.index), data, _associated(self.header, self.index, final))
        self.index += 1
        return sealed

    def add(self, data: bytes | memoryview) -> bytes:
        size = self.chunk_size
        if self.pending:
            self.pending += data
            data = self.pending
        # A full chunk waits for one more byte: only then is it known not to be the last.
        full = (len(data) - 1) // size if len(data) > size else 0
        with memoryview(data) as view:
            sealed = [self._seal(view[k * size:(k + 1) * size], final=False) for k in range(full)]
            self.pending = bytearray(view[full * size:])
        return self._out(sealed)

    def finish(self) -> bytes:
        last = self._seal(self.pending, final=True)
        self.pending = bytearray()
        return self._out([last])


@dataclass(frozen=True)
class Layout:
    """Where each chunk of a sealed archive of `stored_size` bytes lies, and the .tar.gz's size."""

    header: bytes
    key_id: bytes
    chunk_size: int
    stored_size: int
    chunks: int
    plain_size: int

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk `index` in the stored file."""
        offset = HEADER.size + index * (self.chunk_size + TAG)
        return offset, min(self.chunk_size + TAG, self.stored_size - offset)

    def chunk_at(self, plain_offset: int) -> int:
        return min(plain_offset // self.chunk_size, max(self.chunks - 1, 0))


def layout(name: str, first: bytes, stored_size: int) -> Layout:
    """The layout of a sealed archive from its first bytes (at least HEADER.size) and its size."""
    if len(first) < HEADER.size:
        raise ArchiveAltered(f"backup archive {name} is altered on disk at byte {len(first)}: "
                             "cut inside its header", at=len(first))
    magic, version, chunk_size, kid, _ = HEADER.unpack_from(first)
    if magic != MAGIC:
        raise ArchiveAltered(f"backup archive {name} is altered on disk at byte 0: neither sealed nor a .tar.gz", at=0)
    if version != VERSION:
        raise ArchiveAltered(f"backup archive {name} is altered on disk at byte 8: format version {version} "
                             f"(this release reads {VERSION})", at=8)
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise ArchiveAltered(f"backup archive {name} is altered on disk at byte 9: chunk size {chunk_size}", at=9)
    body = stored_size - HEADER.size
    chunks = -(-body // (chunk_size + TAG))
    if chunks == 0 or body - (chunks - 1) * (chunk_size + TAG) < TAG:
        raise ArchiveAltered(f"backup archive {name} is altered on disk at byte {stored_size}: truncated "
                             "(its last chunk is incomplete)", at=stored_size)
    return Layout(first[:HEADER.size], kid, chunk_size, stored_size, chunks, body - chunks * TAG)


class Opener:
    """Opens the chunks of the sealed archive stored at `name` (its location), each checked against its tag."""

    def __init__(self, name: str, shape: Layout, key_for: Callable[[bytes], bytes | None]):
        key = key_for(shape.key_id)
        if key is None:
            raise EffectError(f"backup archive {name} is sealed with backup key {shape.key_id.hex()}, which the "
                              "keyring does not hold (dropped, or the header altered): it cannot be read")
        salt = shape.header[HEADER.size - 32:]
        self.name, self.shape, self.aead = name, shape, _archive_key(key, salt, name)

    def open(self, index: int, sealed: bytes) -> bytes:
        final = index == self.shape.chunks - 1
        try:
            return self.aead.decrypt(_nonce(index), sealed, _associated(self.shape.header, index, final))
        except InvalidTag:
            at = self.shape.span(index)[0]
            raise ArchiveAltered(f"backup archive {self.name} is altered on disk at byte {at}: chunk {index + 1} of "
                                 f"{self.shape.chunks} fails its authentication (altered, or another archive's copied "
                                 "here)", at=at) from None


def kind_of(first: bytes) -> str:
    """"sealed", "plain" (a .tar.gz written before encryption) or "unknown" (altered), from the first bytes."""
    if first.startswith(MAGIC):
        return "sealed"
    if first.startswith(GZIP_MAGIC):
        return "plain"
    return "unknown"
