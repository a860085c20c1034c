"""Typed keys for what the dashboard keeps on the aiohttp application and on a request."""

from __future__ import annotations

from aiohttp import web

from adapters.http.dashboard.sessions import Session, Sessions

TOKEN = web.AppKey("dashboard_token", str)
SESSIONS = web.AppKey("dashboard_sessions", Sessions)
# REDIS_ADDONS_PUBLIC_URL's origin (settings.public_url), set only when configured: see guard.own_origin.
PUBLIC_ORIGIN = web.AppKey("dashboard_public_origin", str)
SESSION = web.RequestKey("dashboard_session", Session | None)  # None: not signed in (the sign-in page)
