"""The installation key: every secret kept in PostgreSQL is sealed with it (AES-256-GCM), so the database, a
dump of it or its backups reveal none. Every engine process of the installation holds the same key, in the file
REDIS_ADDONS_SECRETS_KEY_FILE names (one line of base64, 32 bytes, mode 0600).

A sealed value is a version byte, a random 96-bit nonce and the ciphertext with its tag. The row's name is the
associated data: a value copied under another name (another addon's password) does not open. An error names
the row and the key file, never a value or the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.settings import SettingsError

KEY_SIZE, NONCE_SIZE = 32, 12
VERSION = b"\x01"
KEY_FILE_ENV = "REDIS_ADDONS_SECRETS_KEY_FILE"


class SecretsKeyError(SettingsError):
    """The installation key is missing, malformed, or not the one the stored secrets were sealed with."""


class InstallationKey:
    __slots__ = ("_aead", "id", "source")

    def __init__(self, key: bytes, source: str = "the installation key"):
        if len(key) != KEY_SIZE:
            raise SecretsKeyError(f"{source} is not {KEY_SIZE} bytes")
        self._aead = AESGCM(key)
        self.id = hashlib.sha256(b"redis-addons secrets key id" + key).hexdigest()[:16]  # names it, reveals nothing
        self.source = source

    def __repr__(self) -> str:
        return f"<InstallationKey {self.id}>"

    @classmethod
    def new(cls) -> bytes:
        return AESGCM.generate_key(bit_length=8 * KEY_SIZE)

    def seal(self, name: str, value: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return VERSION + nonce + self._aead.encrypt(nonce, value, name.encode())

    def open(self, name: str, sealed: bytes) -> bytes:
        sealed = bytes(sealed)
        if sealed[:1] != VERSION or len(sealed) < 1 + NONCE_SIZE + 16:
            raise SecretsKeyError(f"secret {name!r} in PostgreSQL is not a sealed value of this release (altered?)")
        try:
            return self._aead.decrypt(sealed[1:1 + NONCE_SIZE], sealed[1 + NONCE_SIZE:], name.encode())
        except InvalidTag:
            raise SecretsKeyError(
                f"secret {name!r} in PostgreSQL does not open with {self.source} (key {self.id}): it is not the "
                f"installation's key (every process must hold the same file, {KEY_FILE_ENV}), or the row was "
                "altered or moved under another name") from None


def read_key_file(path: Path) -> InstallationKey:
    """The key in `path`; a file open to others is narrowed to its owner (it holds every secret's key)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SecretsKeyError(f"the secrets key file {path} does not exist ({KEY_FILE_ENV})") from None
    except OSError as error:
        raise SecretsKeyError(f"cannot read the secrets key file {path}: {error.strerror or error}") from None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:  # its content is never repeated: it is the key
        raise SecretsKeyError(f"the secrets key file {path} does not hold a key: one line of base64 of {KEY_SIZE} "
                              "bytes is expected (`redis-addons secrets-key new FILE` writes one)")
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return InstallationKey(key, source=f"the secrets key file {path}")


def write_key_file(path: Path) -> InstallationKey:
    """A new random key in a new 0600 file; an existing file is never replaced (it may be the only copy)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = InstallationKey.new()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretsKeyError(f"the secrets key file {path} exists already: it is left as it is") from None
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(base64.b64encode(key).decode() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return InstallationKey(key, source=f"the secrets key file {path}")
