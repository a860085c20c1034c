"""The web dashboard (reference, "Database Dashboard"): server-rendered pages over the engine, signed
in with the API token, served by the API's own aiohttp server under /dashboard."""

from __future__ import annotations

from aiohttp import web

from adapters.http.dashboard import actions, pages
from adapters.http.dashboard.guard import guard_middleware
from adapters.http.dashboard.keys import PUBLIC_ORIGIN, SESSIONS, TOKEN
from adapters.http.dashboard.render import STATIC, check_vendor_files
from adapters.http.dashboard.sessions import Sessions


class Dashboard:
    """make_app puts `middleware` before the bearer check, then calls `install`."""

    def __init__(self, token: str, sessions: Sessions | None = None, public_url: str | None = None):
        """`public_url`: the origin browsers reach us at behind a reverse proxy (settings.public_url)."""
        self.token, self.sessions, self.public_url = token, sessions or Sessions(), public_url
        self.middleware = guard_middleware(self.sessions)

    def install(self, app: web.Application) -> None:
        app[TOKEN], app[SESSIONS] = self.token, self.sessions
        if self.public_url:
            app[PUBLIC_ORIGIN] = self.public_url
        app.router.add_routes(pages.routes)
        app.router.add_routes(actions.routes)
        app.router.add_static("/dashboard/static", STATIC, follow_symlinks=False)
        check_vendor_files()
