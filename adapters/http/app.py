"""The aiohttp application: middlewares, then the routes of each resource file."""

from __future__ import annotations

from aiohttp import web

from adapters.http import addons, apps, backups, events, maintenance, metrics, openapi, operations, settings, versions
from adapters.http import stats
from adapters.http import webhooks
from adapters.http import credentials
from adapters.http import tokens
from adapters.http import hosts
from adapters.http.auth import auth_middleware, ensure_token
from adapters.http.ownership import ownership_middleware
from adapters.http.dashboard import Dashboard
from adapters.http.errors import error_middleware
from adapters.http.inputs import MAX_BODY
from adapters.http.keys import ENGINE, STREAMS
from engine.app import Engine


def make_app(engine: Engine, token: str | None = None, scrape_token: str | None = None) -> web.Application:
    """`token` defaults to the installation's (created on first use in settings.token_file), and the
    scrape token to the one in settings.metrics_token_file."""
    token = token or ensure_token(engine.settings.token_file)
    scrape_token = scrape_token or metrics.scrape_token_of(engine)
    public_url = engine.settings.public_url if engine is not None else None  # None: the OpenAPI test's app
    dashboard = Dashboard(token, public_url=public_url)  # its session middleware goes before the bearer check
    app = web.Application(middlewares=[error_middleware, dashboard.middleware, auth_middleware(token, scrape_token),
                                       ownership_middleware],  # after the bearer check: a scoped token's reach
                          client_max_size=MAX_BODY)
    app[ENGINE] = engine
    app[STREAMS] = set()
    for module in (operations, apps, addons, backups, settings, events, openapi, versions, maintenance, metrics):
        app.router.add_routes(module.routes)
    app.router.add_routes(stats.routes)
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(credentials.routes)
    app.router.add_routes(tokens.routes)
    app.router.add_routes(hosts.routes)
    app.on_startup.append(metrics.start_metrics)
    app.on_cleanup.append(metrics.stop_metrics)
    dashboard.install(app)
    app.on_shutdown.append(events.close_streams)
    return app
