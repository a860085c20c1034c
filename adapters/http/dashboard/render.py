"""Pages rendered with Jinja2 (autoescaped), and the headers every dashboard page carries."""

from __future__ import annotations

from pathlib import Path

import structlog
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

log = structlog.get_logger("dashboard")

HERE = Path(__file__).parent
STATIC = HERE / "static"
UPLOT = STATIC / "vendor" / "uplot"
UPLOT_FILES = ("uPlot.iife.min.js", "uPlot.min.css")
MISSING_UPLOT = ("the chart library (uPlot) is not installed with this engine: run `make setup` "
                 "(scripts/fetch-uplot.sh) to get it; the figures are shown without charts")

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)

# Only the engine's own files: no inline script or style (uPlot styles its elements from script, which
# CSP allows), no framing, no referrer outside.
HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def uplot_present() -> bool:
    return all((UPLOT / name).is_file() for name in UPLOT_FILES)


def check_vendor_files() -> None:
    if not uplot_present():
        log.warning("dashboard charts unavailable", reason=MISSING_UPLOT)


def page(template: str, status: int = 200, **context) -> web.Response:
    html = templates.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)
