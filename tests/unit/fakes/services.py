"""The other ports in memory: the secret store, the certificate authority, the backup store and
the app restarter."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

from engine.ports import EffectError
from tests.unit.fakes.faults import Faulty

CERTIFICATE_LIFETIME = timedelta(days=365)


def not_after(certificate: str) -> datetime:
    """The expiry a fake certificate carries in its text."""
    for line in certificate.splitlines():
        if line.startswith("not after "):
            return datetime.fromisoformat(line.removeprefix("not after "))
    return datetime.min.replace(tzinfo=timezone.utc)


class FakeSecretStore(Faulty):
    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[str, str] = {}
        self._made = 0
        self.pending: dict[str, str] = {}

    def password_for(self, addon: str) -> str:
        self._called("password_for", addon=addon)
        if addon not in self.passwords:
            self._made += 1
            self.passwords[addon] = f"password-{self._made}-of-{addon}"
        return self.passwords[addon]

    def peek(self, addon: str) -> str | None:
        return self.passwords.get(addon)

    def forget(self, addon: str) -> None:
        self.passwords.pop(addon, None)
        self.pending.pop(addon, None)

    # A rotation's new password, beside the addon's (engine/credentials_ports.py RotatingSecrets).

    def pending_for(self, addon: str) -> str:
        self._called("pending_for", addon=addon)
        if addon not in self.pending:
            self._made += 1
            self.pending[addon] = f"password-{self._made}-of-{addon}"
        return self.pending[addon]

    def peek_pending(self, addon: str) -> str | None:
        return self.pending.get(addon)

    def publish_pending(self, addon: str) -> None:
        self._called("publish_pending", addon=addon)
        if addon in self.pending:
            self.passwords[addon] = self.pending[addon]

    def forget_pending(self, addon: str) -> None:
        self._called("forget_pending", addon=addon)
        self.pending.pop(addon, None)


class FakeCertificates(Faulty):
    certificate_pem = "-----BEGIN CERTIFICATE-----\nthe installation's fake CA\n-----END CERTIFICATE-----\n"

    def __init__(self, now=lambda: datetime.now(timezone.utc)) -> None:
        super().__init__()
        self.now = now
        self.issued: list[tuple[str, tuple[str, ...]]] = []

    def issue_server_certificate(self, address: str, names: tuple[str, ...], also_at: tuple[str, ...] = ()) -> tuple[str, str]:
        self._called("issue_server_certificate", address=address, names=names, also_at=tuple(also_at))
        self.issued.append((address, tuple(names)))
        serial = len(self.issued)
        certificate = (f"-----BEGIN CERTIFICATE-----\nserial {serial}\nfor {address} {' '.join(names)}\n"
                       f"not after {(self.now() + CERTIFICATE_LIFETIME).isoformat()}\n-----END CERTIFICATE-----\n")
        return certificate, f"-----BEGIN PRIVATE KEY-----\nkey {serial}\n-----END PRIVATE KEY-----\n"


class FakeBackupStore(Faulty):
    """Archives by name, kept as their tar (the directory store gzips them; nothing here depends on it).
    A write is all or nothing: a stream that fails leaves no archive."""

    def __init__(self) -> None:
        super().__init__()
        self.archives: dict[str, bytes] = {}

    async def write_archive(self, name: str, tar) -> dict:
        self._called("write_archive", name=name)
        data = b"".join([chunk async for chunk in tar])
        await asyncio.sleep(0)
        self.archives[name] = data
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "location": name}

    async def read(self, name: str, start: int = 0, end: int | None = None, recorded=None):
        self._called("read", name=name)
        if name not in self.archives:
            raise EffectError(f"backup archive {name} is missing from the backup store")
        yield self.archives[name][start:end]

    async def read_tar(self, name: str):
        self._called("read_tar", name=name)
        if name not in self.archives:
            raise EffectError(f"backup archive {name} is missing from the backup store")
        yield self.archives[name]

    async def checksum(self, name: str) -> tuple[int, str] | None:
        self._called("checksum", name=name)
        data = self.archives.get(name)
        return None if data is None else (len(data), hashlib.sha256(data).hexdigest())

    async def delete(self, name: str) -> None:
        self._called("delete", name=name)
        self.archives.pop(name, None)


class FakeAppRestarter(Faulty):
    def __init__(self) -> None:
        super().__init__()
        self.restarts: list[tuple[str, dict, dict[str, str]]] = []

    async def restart(self, app: str, method: dict, environment: dict[str, str]) -> str:
        self._called("restart", app=app)
        await asyncio.sleep(0)
        self.restarts.append((app, dict(method), dict(environment)))
        return f"app {app} restarted ({method.get('kind')})"


class DataDirectoryInUse(Exception):
    """Another engine holds the data directory."""


class FakeDataLock:
    """One engine's handle on the data directory's lock (`holders`: the directory, shared by a world's
    engines). The lock of an engine whose process dies goes with it, as flock(2)'s does."""

    def __init__(self, holders: dict, name: str) -> None:
        self.holders, self.name, self.api = holders, name, None

    def acquire(self) -> None:
        holder = self.holders.get("engine")
        if holder is not None and holder is not self:
            raise DataDirectoryInUse(f"the data directory is in use by {holder.name} (API {holder.api})")
        self.holders["engine"] = self

    def announce(self, api: str) -> None:
        self.api = api

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        if self.holders.get("engine") is self:
            del self.holders["engine"]
