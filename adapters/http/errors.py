"""Every failure answers JSON: {"error": {"rule": ..., "message": ...}}, with no traceback or secret."""

from __future__ import annotations

import re
import time
import traceback
import uuid

import structlog
from aiohttp import web

from domain.errors import DomainError
from engine.ports import EffectError, TransientError
from engine.follower import ReadModelsBehind
from engine.settings import SettingsError
from engine.store import EventStoreUnavailable

log = structlog.get_logger("http")

# Credentials in a URL (scheme://user:password@host) never leave the server in an error.
_URL_CREDENTIALS = re.compile(r"(://[^\s:/@]*):[^\s@/]+@")


class BadRequest(Exception):
    """The request itself is wrong (body, field, query): 400, naming the problem."""

    def __init__(self, message: str, rule: str = "bad-request", field: str | None = None):
        super().__init__(message)
        self.rule = rule
        self.field = field


def scrub(message: str) -> str:
    return _URL_CREDENTIALS.sub(r"\1:***@", message)


def error_response(status: int, rule: str, message: str, headers=None, body: dict | None = None, **extra) -> web.Response:
    """`extra` goes inside "error" (e.g. field=...); `body` beside it (e.g. the failed operation)."""
    payload = {"error": {"rule": rule, "message": scrub(message), **extra}, **(body or {})}
    return web.json_response(payload, status=status, headers=headers)


HTTP_RULES = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}
# What a refusal answers, by the class of the error (a DomainError names its own status and rule).
# The OpenAPI test reads the statuses here, so what is documented is what the middleware does.
ANSWERS = ((BadRequest, 400, None), (EffectError, 502, "effect-failed"),
           (EventStoreUnavailable, 503, "event-store-unavailable"),  # before TransientError, its base
           (ReadModelsBehind, 503, "read-models-behind"),
           (TransientError, 503, "temporarily-unavailable"), (SettingsError, 500, "misconfigured"))


def status_for(error: type[BaseException]) -> int | None:
    """The status an error of this class is answered with; None: an unexpected error (a 500)."""
    if issubclass(error, DomainError):
        return error.status
    for kind, status, _ in ANSWERS:
        if issubclass(error, kind):
            return status
    if issubclass(error, web.HTTPException) and error.status_code >= 400:
        return error.status_code
    return None


def refusal(e: Exception) -> web.Response:
    if isinstance(e, BadRequest):
        return error_response(400, e.rule, str(e), **({"field": e.field} if e.field else {}))
    if isinstance(e, DomainError):
        return error_response(e.status, e.rule, str(e))
    status, rule = next((status, rule) for kind, status, rule in ANSWERS if isinstance(e, kind))
    return error_response(status, rule, str(e))


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Also logs each request (method, path, status, duration); never its headers."""
    request_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(method=request.method, path=request.path, request_id=request_id):
        try:
            response = await handler(request)
        except (DomainError, *(kind for kind, _, _ in ANSWERS)) as e:
            response = refusal(e)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            message = f"no route {request.method} {request.path}" if e.status == 404 else e.text or e.reason
            if e.status == 405:
                message = f"method {request.method} is not allowed on {request.path}"
            allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
            response = error_response(e.status, HTTP_RULES.get(e.status, "http-error"), message, headers=allow)
        except Exception as e:
            # rendered here so that credentials in a URL are masked in the log too
            trace = scrub("".join(traceback.format_exception(e)))
            log.error("request failed", error=scrub(f"{type(e).__name__}: {e}"), traceback=trace)
            response = error_response(500, "internal-error", f"internal error (request {request_id}); the server log has the details")
        log.info("request", status=response.status, ms=round((time.monotonic() - started) * 1000, 1))
        return response
