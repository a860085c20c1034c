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
from engine.settings import SettingsError

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


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Also logs each request (method, path, status, duration); never its headers."""
    request_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(method=request.method, path=request.path, request_id=request_id):
        try:
            response = await handler(request)
        except BadRequest as e:
            extra = {"field": e.field} if e.field else {}
            response = error_response(400, e.rule, str(e), **extra)
        except DomainError as e:
            response = error_response(e.status, e.rule, str(e))
        except EffectError as e:
            response = error_response(502, "effect-failed", str(e))
        except TransientError as e:
            response = error_response(503, "temporarily-unavailable", str(e))
        except SettingsError as e:
            response = error_response(500, "misconfigured", str(e))
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
