"""Dashboard sessions and the cross-site checks (no aiohttp here: the unit tests drive it alone).

Signing in with the API token opens a session: a random id in an HttpOnly, SameSite=Strict cookie,
kept server-side in memory with its expiry (a restart of the server signs everyone out; signing out
drops it). Each session holds a CSRF token (synchronizer token pattern, OWASP): a request that changes
anything must carry it, and come from the server's own origin (Origin, else Referer), since
SameSite alone does not cover same-site pages of other ports or older browsers.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "redis_addons_session"
# Over https the cookie is Secure and named with the `__Host-` prefix: a browser then takes it only Secure,
# with Path=/ and no Domain, so no other host of the site (nor plain http) can set or shadow it.
SECURE_COOKIE = "__Host-" + COOKIE
LIFETIME_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    expires: float  # on the Sessions' clock
    access: object = None  # engine.access.Access of the token signed in with; None: nothing (never the operator by default)


class Sessions:
    """In memory: one engine process serves its dashboard (a session does not survive a restart)."""

    def __init__(self, lifetime_s: float = LIFETIME_S, clock=time.monotonic):
        self.lifetime_s, self.clock = lifetime_s, clock
        self._by_id: dict[str, Session] = {}

    def open(self, access=None) -> Session:
        self._drop_expired()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock() + self.lifetime_s, access)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._by_id.get(session_id or "")
        if session is not None and session.expires <= self.clock():
            del self._by_id[session.id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def __len__(self) -> int:
        return len(self._by_id)

    def _drop_expired(self) -> None:
        now = self.clock()
        for sid in [sid for sid, s in self._by_id.items() if s.expires <= now]:
            del self._by_id[sid]


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (the API token, a CSRF token)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def origin_refusal(own_origin: str, origin: str | None, referer: str | None) -> str | None:
    """Why a request that changes something is refused for where it comes from; None: from our own pages.
    `own_origin`: scheme://host[:port] as the request reached us."""
    if origin and origin != "null":
        return None if origin.lower() == own_origin.lower() else f"request from another origin ({origin}) refused"
    if referer:
        parts = urlsplit(referer)
        came_from = f"{parts.scheme}://{parts.netloc}"
        return None if came_from.lower() == own_origin.lower() else f"request from another origin ({came_from}) refused"
    return "request with neither an Origin nor a Referer header refused: its origin cannot be checked"


def cross_site_refusal(session: Session, csrf_given: str | None, own_origin: str, origin: str | None,
                       referer: str | None) -> str | None:
    """Why a change asked with this session is refused (None: it may go on)."""
    if why := origin_refusal(own_origin, origin, referer):
        return why
    if not token_matches(csrf_given, session.csrf):
        return "missing or wrong CSRF token: reload the page and try again"
    return None
