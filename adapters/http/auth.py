"""Bearer-token authentication: the installation's token (the operator's, kept in a 0600 file), and the
tokens scoped to apps that the operator creates (engine/access.py). Each request records its Access
(request[ACCESS]) and, for the events it makes, who asked (engine/audit.py); adapters/http/ownership.py
then keeps a scoped token to its apps."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

import structlog
from aiohttp import web

from adapters.http.errors import error_response
from adapters.http.keys import ENGINE
from engine import audit
from engine.access import NO_ACCESS, OPERATOR_ACCESS, Access
from engine.audit import Requester

log = structlog.get_logger("http")

PUBLIC_PATHS = frozenset({"/health"})
# Set on a request by the dashboard's middleware (adapters/http/dashboard/guard.py): its own pages, or a
# request with its session cookie (and CSRF token for a change) instead of a bearer token.
SESSION_AUTHENTICATED = web.RequestKey("authenticated_by_dashboard_session", bool)
# What the request may reach: set here for a bearer token, by the dashboard's middleware for a session.
ACCESS = web.RequestKey("access", Access)
# The scrape token: no app, the metrics grant (ownership.GRANTED opens /metrics to it as to a granted token).
SCRAPER_ACCESS = Access(Requester("scraper", "scrape token"), apps=frozenset(), grants=frozenset({"metrics"}))


def ensure_token(path: Path, what: str = "API token") -> str:
    """Read the API token (or the scrape token), creating it on first use (owner-only file, never overwritten)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not token:
            raise RuntimeError(f"the {what} file {path} is empty: delete it and restart to get a new token")
        if path.stat().st_mode & 0o077:
            log.warning(f"{what} file is readable by others; restricting it to its owner", file=str(path))
            os.chmod(path, 0o600)
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.info(f"{what} created", file=str(path))
    return token


def bearer_of(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def auth_middleware(token: str, scrape_token: str | None = None):
    expected = token.encode()
    scraper = (scrape_token or "").encode()

    @web.middleware
    async def authenticate(request: web.Request, handler):
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        if request.get(SESSION_AUTHENTICATED):
            return await as_requester(request, handler, request.get(ACCESS, NO_ACCESS))
        given = bearer_of(request)
        if scraper and given is not None and hmac.compare_digest(given.encode(), scraper):
            return await scrape_only(request, handler)
        if given is not None and hmac.compare_digest(given.encode(), expected):
            return await as_requester(request, handler, OPERATOR_ACCESS)
        access, token = (None, None)
        if given is not None and request.app.get(ENGINE) is not None:
            access, token = await request.app[ENGINE].access.find(given)
        if access is None:
            why = ("missing bearer token" if given is None else
                   f"token {token['id']} was revoked" if token else "invalid bearer token")
            return error_response(
                401,
                "unauthorized",
                f"{why}: send `Authorization: Bearer <token>` (the installation's token is in the server's api-token "
                "file; the operator creates tokens scoped to apps with `tokens create`)",
                headers={"WWW-Authenticate": 'Bearer realm="redis-addons"'},
            )
        return await as_requester(request, handler, access)

    return authenticate


async def as_requester(request: web.Request, handler, access: Access):
    """Run the handler as `access`: what it reaches (request[ACCESS]), who its events say asked, and the token
    its log lines name (the request line too: error_middleware logs it in this request's own task, whose
    context aiohttp makes per request, so the binding ends with it). Reading a password leaves that trace."""
    request[ACCESS] = access
    structlog.contextvars.bind_contextvars(token_id=access.requester.id)
    with audit.requested_by(access.requester):
        return await handler(request)


async def scrape_only(request: web.Request, handler):
    """The scrape token reads /metrics (Prometheus keeps it in a file); it is refused everywhere else."""
    if request.path == "/metrics" and request.method in ("GET", "HEAD"):
        return await as_requester(request, handler, SCRAPER_ACCESS)
    return error_response(403, "scrape-token-metrics-only",
                          "the scrape token (the server's metrics-token file) opens GET /metrics only: "
                          "use the API token for this request")
