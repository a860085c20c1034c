"""The HTTP API (aiohttp): JSON resources, an event stream, an OpenAPI document."""

from adapters.http.app import make_app
from adapters.http.serve import serve

__all__ = ["make_app", "serve"]
