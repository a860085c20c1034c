"""Who may do what: the operator (the installation's token) everything, a scoped token its apps only.

The service creates, lists and revokes tokens (domain/access_token.py) and finds the token of a request by
the SHA-256 of its secret, in memory: one load at first use, then kept current by this process's own
saves, so a revocation is refused from the next request on. It also tells which app owns an aggregate
(by its creation event), for the event stream a scoped token reads."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from domain.access_token import (AccessTokens, InvalidAccessToken, UnknownAccessToken, checked_apps, checked_grants,
                                 checked_name)
from domain.app import App
from domain.errors import UnknownApp
from engine.addon_lookup import AddonLookup
from engine.audit import OPERATOR, Requester
from engine.store import AggregateNotFoundError, EventLog

log = structlog.get_logger("access")

SECRET_PREFIX = "rat_"  # recognisable in a leak report or a secret scanner; the rest is 32 random bytes


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Access:
    """What a request may reach. `apps` None: every app and the installation (the operator)."""

    requester: Requester
    apps: frozenset[str] | None = None
    grants: frozenset[str] = frozenset()

    @property
    def is_operator(self) -> bool:
        return self.apps is None

    def owns(self, app: str | None) -> bool:
        """`app` None: something of the installation, no app's."""
        return self.apps is None or (app is not None and app in self.apps)


OPERATOR_ACCESS = Access(OPERATOR)
NO_ACCESS = Access(Requester("nobody", "nobody"), apps=frozenset())


def shown(token: dict) -> dict:
    """A token as listed: never its secret, nor the secret's hash."""
    return {"id": token["id"], "name": token["name"], "apps": list(token["apps"]), "grants": list(token["grants"]),
            "created_at": token["created_at"], "revoked": token["revoked_at"] is not None,
            "revoked_at": token["revoked_at"]}


class AccessService:
    def __init__(self, events: EventLog, lookup: AddonLookup, clock=utc_now):
        self.events, self.lookup, self.clock = events, lookup, clock
        self._tokens: AccessTokens | None = None
        self._by_hash: dict[str, dict] = {}
        self._loading = asyncio.Lock()
        self._owners: dict[uuid.UUID, str | None] = {}  # aggregate id -> its app (None: the installation's)

    async def _registry(self) -> AccessTokens:
        async with self._loading:
            if self._tokens is None:
                try:
                    self._keep(await self.events.get(AccessTokens.ID))
                except AggregateNotFoundError:
                    self._keep(AccessTokens())
            return self._tokens

    def _keep(self, tokens: AccessTokens) -> None:
        self._tokens = tokens
        self._by_hash = {t["secret_sha256"]: t for t in tokens.tokens.values()}

    async def _save(self, change) -> dict:
        """Apply `change` to a copy reloaded from the store and save it; the index moves only once saved."""
        async with self._loading:
            try:
                tokens: AccessTokens = await self.events.get(AccessTokens.ID)
            except AggregateNotFoundError:
                tokens = AccessTokens()
            result = change(tokens)
            await self.events.save(tokens)
            self._keep(tokens)
            return result

    # -- commands (the operator's) -----------------------------------------

    async def create(self, name, apps, grants=None) -> dict:
        """A new token; its secret is in this answer only. Its rules are checked before its apps are looked up."""
        name, apps, grants = checked_name(name), checked_apps(apps), checked_grants([] if grants is None else grants)
        for app in apps:
            try:
                await self.lookup.known_app(app)
            except UnknownApp:
                raise InvalidAccessToken(f"unknown app {app!r}: it has never had an addon here (a token is scoped "
                                         "to existing apps)", field="apps") from None
        await self._registry()
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok-" + uuid.uuid4().hex[:12]
        created = await self._save(lambda t: t.issue(token_id, name, apps, grants, secret_hash(secret), self.clock()))
        log.info("access token created", token_id=token_id, name=created["name"], apps=created["apps"])
        return {"token": shown(created), "secret": secret}

    async def list(self) -> list[dict]:
        registry = await self._registry()
        return [shown(t) for t in sorted(registry.tokens.values(), key=lambda t: (t["created_at"], t["id"]))]

    async def revoke(self, token_id: str) -> dict:
        registry = await self._registry()
        if token_id not in registry.tokens:
            raise UnknownAccessToken(f"unknown token {token_id!r} (see `tokens list` for the IDs)")
        revoked = await self._save(lambda t: t.withdraw(token_id, self.clock()))
        log.info("access token revoked", token_id=token_id, name=revoked["name"])
        return shown(revoked)

    # -- queries (the HTTP layer's) -----------------------------------------

    async def find(self, secret: str) -> tuple[Access | None, dict | None]:
        """(its access, the token) for a live token's secret; (None, the token) for a revoked one; (None, None)."""
        await self._registry()
        token = self._by_hash.get(secret_hash(secret))
        if token is None or token["revoked_at"] is not None:
            return None, token and shown(token)
        return self.access_of(token), shown(token)

    def still_valid(self, access: Access) -> bool:
        """For a dashboard session opened with a token: false once it is revoked."""
        if access.is_operator or self._tokens is None:
            return access.is_operator
        token = self._tokens.tokens.get(access.requester.id)
        return token is not None and token["revoked_at"] is None

    @staticmethod
    def access_of(token: dict) -> Access:
        return Access(Requester(token["id"], token["name"]), frozenset(token["apps"]), frozenset(token["grants"]))

    async def owner_of(self, aggregate_id: uuid.UUID) -> str | None:
        """The app an aggregate belongs to, from its creation event (its `app`, an App's `name`); None: the
        installation's (the token registry, an operator's webhook). Cached: an aggregate never changes app."""
        if aggregate_id not in self._owners:
            try:
                created = await self.events.get(aggregate_id, version=1)
            except AggregateNotFoundError:
                return None
            self._owners[aggregate_id] = owner_in(created)
        return self._owners[aggregate_id]


def owner_in(aggregate) -> str | None:
    if isinstance(aggregate, AccessTokens):
        return None
    if isinstance(aggregate, App):
        return aggregate.name
    app = getattr(aggregate, "app", None)
    return app if isinstance(app, str) else None
