"""Bearer-token authentication: one token per installation, kept in a 0600 file."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

import structlog
from aiohttp import web

from adapters.http.errors import error_response

log = structlog.get_logger("http")

PUBLIC_PATHS = frozenset({"/health"})
# Set on a request by the dashboard's middleware (adapters/http/dashboard/guard.py): its own pages, or a
# request with its session cookie (and CSRF token for a change) instead of a bearer token.
SESSION_AUTHENTICATED = web.RequestKey("authenticated_by_dashboard_session", bool)


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
        if request.path in PUBLIC_PATHS or request.get(SESSION_AUTHENTICATED):
            return await handler(request)
        given = bearer_of(request)
        if scraper and given is not None and hmac.compare_digest(given.encode(), scraper):
            return await scrape_only(request, handler)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            why = "missing bearer token" if given is None else "invalid bearer token"
            return error_response(
                401,
                "unauthorized",
                f"{why}: send `Authorization: Bearer <token>` (the token is in the server's api-token file)",
                headers={"WWW-Authenticate": 'Bearer realm="redis-addons"'},
            )
        return await handler(request)

    return authenticate


async def scrape_only(request: web.Request, handler):
    """The scrape token reads /metrics (Prometheus keeps it in a file); it is refused everywhere else."""
    if request.path == "/metrics" and request.method in ("GET", "HEAD"):
        return await handler(request)
    return error_response(403, "scrape-token-metrics-only",
                          "the scrape token (the server's metrics-token file) opens GET /metrics only: "
                          "use the API token for this request")
