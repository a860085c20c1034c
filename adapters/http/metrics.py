"""GET /metrics: the engine's Prometheus metrics (adapters/metrics), for the API token or the scrape token.

The scrape token is read-only and opens this route only (adapters/http/auth.py): Prometheus keeps it in a
file of its own (`credentials_file`), which then cannot drive the API. It is made on first use in the data
directory (settings.metrics_token_file, 0600), beside the API token; the CLI does not hand it out.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from adapters.http.auth import ensure_token
from adapters.http.keys import ENGINE
from adapters.metrics.engine_metrics import EngineMetrics
from engine.app import Engine

routes = web.RouteTableDef()
METRICS = web.AppKey("metrics", EngineMetrics)


def scrape_token_of(engine: Engine | None) -> str | None:
    return None if engine is None else ensure_token(engine.settings.metrics_token_file, "scrape token")


async def start_metrics(app: web.Application) -> None:
    """Before the first request: from now on each saga step's duration goes to the histogram."""
    app[METRICS] = EngineMetrics(app[ENGINE])


async def stop_metrics(app: web.Application) -> None:
    """At the app's cleanup: the coordinator keeps no observer of a gone app (each make_app on an engine adds one)."""
    if METRICS in app:
        app[METRICS].close()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body, content_type = await request.app[METRICS].exposition(",".join(request.headers.getall(hdrs.ACCEPT, [])))
    response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})
    response.enable_compression()  # when the scraper accepts gzip, as Prometheus does
    return response
