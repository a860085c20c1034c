"""Typed keys for what the dashboard keeps on the aiohttp application and on a request."""

from __future__ import annotations

from aiohttp import web

from adapters.http.dashboard.sessions import Session, Sessions

TOKEN = web.AppKey("dashboard_token", str)
SESSIONS = web.AppKey("dashboard_sessions", Sessions)
SESSION = web.RequestKey("dashboard_session", Session | None)  # None: not signed in (the sign-in page)
