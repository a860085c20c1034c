"""Access tokens an operator hands out, each scoped to one or more apps.

One aggregate holds every token of the installation (a handful, each created and revoked once): the
HTTP layer looks a token up by the SHA-256 of its secret on every request, so the whole set is read back
at start with one load, not found by scanning the log. Only the SHA-256 of a secret is recorded: the
secret itself is shown once, when the token is created, and kept nowhere."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidName
from domain.names import check_app_name

# What a token may be given beyond its apps: `metrics` opens GET /metrics (every app's figures).
GRANTS = ("metrics",)
MAX_NAME = 64
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class InvalidAccessToken(DomainError):
    rule = "access-token"
    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class UnknownAccessToken(DomainError):
    rule = "unknown-token"
    status = 404


def checked_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidAccessToken("a token needs a name (who or what holds it, e.g. ci-deploy)", field="name")
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidAccessToken(f"a token's name is at most {MAX_NAME} printable characters, got {len(name)}",
                                 field="name")
    return name


def checked_apps(apps) -> list[str]:
    if not isinstance(apps, (list, tuple)) or not apps:
        raise InvalidAccessToken("a token is scoped to at least one app: give its apps", field="apps")
    try:
        return list(dict.fromkeys(check_app_name(app) for app in apps))  # in order, each once
    except InvalidName as e:
        raise InvalidAccessToken(str(e), field="apps") from None


def checked_grants(grants) -> list[str]:
    if not isinstance(grants, (list, tuple)) or any(g not in GRANTS for g in grants):
        raise InvalidAccessToken(f"unknown grant in {list(grants) if isinstance(grants, (list, tuple)) else grants!r}:"
                                 f" a token may be granted {', '.join(GRANTS)}", field="grants")
    return list(dict.fromkeys(grants))


class AccessTokens(Aggregate):
    """`tokens`: token id -> {id, name, apps, grants, secret_sha256, created_at, revoked_at}."""

    ID = uuid5(NAMESPACE_URL, "redis-addons:/access-tokens")

    @staticmethod
    def create_id(**_) -> UUID:
        return AccessTokens.ID

    @event("Opened")
    def __init__(self):
        self.tokens: dict[str, dict] = {}

    def issue(self, token_id: str, name, apps, grants, secret_sha256: str, at: str) -> dict:
        """`at`: an ISO 8601 time (the domain reads no clock)."""
        name, apps, grants = checked_name(name), checked_apps(apps), checked_grants(grants)
        if not SHA256_HEX.fullmatch(secret_sha256 or ""):
            raise InvalidAccessToken("a token is recorded by the SHA-256 of its secret (64 hex digits), never the secret")
        if token_id in self.tokens or any(t["secret_sha256"] == secret_sha256 for t in self.tokens.values()):
            raise InvalidAccessToken(f"token {token_id} exists already")
        self._created(token_id=token_id, name=name, apps=apps, grants=grants, secret_sha256=secret_sha256,
                      created_at=at)
        return self.tokens[token_id]

    @event("TokenCreated")
    def _created(self, token_id: str, name: str, apps: list, grants: list, secret_sha256: str, created_at: str):
        self.tokens[token_id] = {"id": token_id, "name": name, "apps": list(apps), "grants": list(grants),
                                 "secret_sha256": secret_sha256, "created_at": created_at, "revoked_at": None}

    def withdraw(self, token_id: str, at: str) -> dict:
        """Revoking a revoked token changes nothing (a retried request is harmless)."""
        token = self.tokens.get(token_id)
        if token is None:
            raise UnknownAccessToken(f"unknown token {token_id!r} (see `tokens list` for the IDs)")
        if token["revoked_at"] is None:
            self._revoked(token_id=token_id, revoked_at=at)
        return token

    @event("TokenRevoked")
    def _revoked(self, token_id: str, revoked_at: str):
        self.tokens[token_id]["revoked_at"] = revoked_at
