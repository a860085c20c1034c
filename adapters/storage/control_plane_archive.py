"""The control plane's archive: its whole state (engine/control_plane_export.py) in one file sealed with a
passphrase, in the shape of age's passphrase files, made of `cryptography`'s primitives.

    header   "redis-addons control-plane archive\\n" | version (1 byte) | scrypt log2(N), r, p (1 byte each)
             | salt (16 bytes) | passphrase check (16 bytes)
    chunks   the zlib-compressed JSON lines, cut in CHUNK-byte pieces (the last one 0 to CHUNK), each encrypted
             with AES-256-GCM and followed by its 16-byte tag; nothing else

scrypt(passphrase, salt) gives 48 bytes: the key, then the check kept in the header, so a wrong passphrase is
told apart from an altered file (scrypt's cost protects both alike). Chunk i's nonce is i (11 bytes) and a
final flag (1 byte), as in age's STREAM: the key is the archive's own (a fresh salt each time), a chunk moved,
dropped or added fails its tag, and a file cut at a chunk's end is caught (that chunk was not sealed as the
last). The whole header is each chunk's associated data, so a changed cost, salt or check fails as well.
Nothing is given to the reader before the last chunk's tag is checked.
"""

from __future__ import annotations

import hmac
import json
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from engine.recovery_ports import ArchiveRefused, RecoveryRefused

MAGIC = b"redis-addons control-plane archive\n"
VERSION = 1
PARAMETERS = struct.Struct(">BBBB16s16s")  # version, log2(N), r, p, salt, check
HEADER_SIZE = len(MAGIC) + PARAMETERS.size
CHUNK, TAG = 1 << 16, 16
DEFAULT_LOG2_N = 17  # 128 MiB and about half a second: the archive may sit on a shared disk for years
MIN_PASSPHRASE = 12


def _derive(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> tuple[AESGCM, bytes]:
    derived = Scrypt(salt=salt, length=48, n=1 << log2_n, r=r, p=p).derive(passphrase.encode())
    return AESGCM(derived[:32]), derived[32:]


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class PassphraseArchive:
    """SealedArchive on one local file; `log2_n` lowers scrypt's cost for tests only."""

    def __init__(self, log2_n: int | None = None):
        self.log2_n = log2_n or DEFAULT_LOG2_N

    # -- writing ---------------------------------------------------------------------------

    def write(self, path: Path, records: Iterable[dict], passphrase: str) -> int:
        if len(passphrase) < MIN_PASSPHRASE:
            raise RecoveryRefused(f"the passphrase must be at least {MIN_PASSPHRASE} characters long: it alone guards "
                                  "every secret in the archive")
        path = Path(path)
        if path.is_dir():
            raise RecoveryRefused(f"{path} is a directory: give the archive's file name")
        salt = os.urandom(16)
        sealer, check = _derive(passphrase, salt, self.log2_n, 8, 1)
        header = MAGIC + PARAMETERS.pack(VERSION, self.log2_n, 8, 1, salt, check)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as e:
            raise RecoveryRefused(f"cannot write the archive at {path}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header)
                chunks = _Chunks(out, sealer, header)
                compressor = zlib.compressobj(6)
                for record in records:
                    chunks.add(compressor.compress(json.dumps(record, separators=(",", ":")).encode() + b"\n"))
                chunks.add(compressor.flush())
                chunks.close()
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.replace(partial, path)  # an older archive at that path stays whole until this one is
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _sync_directory(path.parent)
        return size

    # -- reading ---------------------------------------------------------------------------

    def read(self, path: Path, passphrase: str) -> list[dict]:
        path = Path(path)
        try:
            with open(path, "rb") as source:
                header = source.read(HEADER_SIZE)
                opener = _opener(path, header, passphrase)
                plain = _open_chunks(path, source, opener, header)
        except FileNotFoundError:
            raise ArchiveRefused(f"no archive at {path}") from None
        except IsADirectoryError:
            raise ArchiveRefused(f"{path} is a directory, not an archive") from None
        except PermissionError:
            raise ArchiveRefused(f"cannot read {path}: permission denied") from None
        try:
            decompressor = zlib.decompressobj()
            text = decompressor.decompress(plain) + decompressor.flush()
            if not decompressor.eof or decompressor.unused_data:
                raise zlib.error("not one whole stream")
            return [json.loads(line) for line in text.splitlines()]
        except (zlib.error, ValueError) as e:  # authenticated, so written so by someone holding the passphrase
            raise ArchiveRefused(f"{path} opens but its content is not a control-plane archive's ({e})") from None


def _opener(path: Path, header: bytes, passphrase: str) -> AESGCM:
    if not MAGIC.startswith(header[:len(MAGIC)]) or not header:
        raise ArchiveRefused(f"{path} is not a redis-addons control-plane archive")
    if len(header) < HEADER_SIZE:
        raise ArchiveRefused(f"{path} is truncated: its header is incomplete ({len(header)} of {HEADER_SIZE} bytes)")
    if header[:len(MAGIC)] != MAGIC:
        raise ArchiveRefused(f"{path} is not a redis-addons control-plane archive")
    version, log2_n, r, p, salt, check = PARAMETERS.unpack(header[len(MAGIC):])
    if version != VERSION:
        raise ArchiveRefused(f"{path} is a control-plane archive of format {version}; this release reads format "
                             f"{VERSION}: restore it with the release that made it")
    if not (10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):  # bounded: a header must not cost gigabytes
        raise ArchiveRefused(f"{path} has been altered: its header names an impossible key derivation")
    opener, expected = _derive(passphrase, salt, log2_n, r, p)
    if not hmac.compare_digest(check, expected):
        raise ArchiveRefused(f"wrong passphrase for {path} (or its header was altered)")
    return opener


def _open_chunks(path: Path, source, opener: AESGCM, header: bytes) -> bytes:
    plain, index, sealed = bytearray(), 0, source.read(CHUNK + TAG)
    while True:
        following = source.read(CHUNK + TAG)
        final = not following
        if len(sealed) < TAG:
            raise ArchiveRefused(f"{path} is truncated: it ends inside chunk {index}")
        try:
            plain += opener.decrypt(_nonce(index, final), sealed, header)
        except InvalidTag:
            raise ArchiveRefused(_why_refused(path, opener, header, index, sealed, final)) from None
        if final:
            return bytes(plain)
        sealed, index = following, index + 1


def _why_refused(path: Path, opener: AESGCM, header: bytes, index: int, sealed: bytes, final: bool) -> str:
    """Cut at a chunk's end (that chunk opens as one that is not the last), cut inside one, or altered."""
    if final:
        try:
            opener.decrypt(_nonce(index, False), sealed, header)
            return f"{path} is truncated: it ends after chunk {index}, which was not the last"
        except InvalidTag:
            if len(sealed) < CHUNK + TAG:
                return f"{path} is truncated or altered: chunk {index} fails its authentication"
    return f"{path} has been altered: chunk {index} fails its authentication"


class _Chunks:
    """Cuts what it is given into sealed chunks; a chunk is written once more follows, so the last is known."""

    def __init__(self, out, sealer: AESGCM, header: bytes):
        self.out, self.sealer, self.header = out, sealer, header
        self.pending, self.index = bytearray(), 0

    def add(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) > CHUNK:
            self.out.write(self.sealer.encrypt(_nonce(self.index, False), bytes(self.pending[:CHUNK]), self.header))
            del self.pending[:CHUNK]
            self.index += 1

    def close(self) -> None:
        self.out.write(self.sealer.encrypt(_nonce(self.index, True), bytes(self.pending), self.header))


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
