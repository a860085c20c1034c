"""Reading what a client sent: a JSON object body, typed fields, query parameters."""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from adapters.http.errors import BadRequest

MAX_BODY = 64 * 1024  # the app's client_max_size
# Event log positions are signed 64-bit integers (SQLite, PostgreSQL) and a page starts at after + 1,
# so a larger `after` cannot name a position: refused here instead of overflowing in the store.
MAX_POSITION = 2**63 - 2
# int() also takes " 12", "1_000" and other scripts' digits ("١٢"): a client sending those has a bug.
INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


async def json_object(request: web.Request) -> dict:
    raw = await request.read()  # past the app's client_max_size: 413
    if not raw.strip():
        raise BadRequest("request body is empty: send a JSON object", rule="malformed-json")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8 text", rule="malformed-json") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON body: {e.msg} at line {e.lineno} column {e.colno}", rule="malformed-json") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the JSON body must be an object, not {type(body).__name__}", rule="malformed-json")
    return body


def text_field(body: dict, *names: str, required: bool = True, example: str = "") -> str | None:
    """The first of `names` present in `body`, as a non-empty string."""
    for name in names:
        if name in body and body[name] is not None:
            value = body[name]
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"field {name!r} must be a non-empty string", rule="invalid-field", field=name)
            return value.strip()
    if required:
        hint = f" (for example {example!r})" if example else ""
        raise BadRequest(f"missing field {names[0]!r}{hint}", rule="missing-field", field=names[0])
    return None


def int_query(request: web.Request, name: str, default: int, low: int, high: int | None = None) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    return bounded_int(text, f"query parameter {name!r}", low, high, rule="invalid-query", field=name)


def bounded_int(text: str, what: str, low: int, high: int | None = None, rule: str = "invalid-query",
                field: str | None = None) -> int:
    """`text` as a decimal integer in [low, high]; `what` names it in the error."""
    shown = text if len(text) <= 60 else text[:60] + "…"
    if not INTEGER.fullmatch(text):
        raise BadRequest(f"{what} must be an integer (ASCII digits), got {shown!r}", rule=rule, field=field)
    value = int(text) if len(text) <= 40 else None  # longer is past any bound here (and int() refuses 4,300 digits)
    if value is None or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{what} must be {bounds}, got {shown}", rule=rule, field=field)
    return value


def flag_query(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "").lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise BadRequest(f"query parameter {name!r} must be true or false, got {text!r}", rule="invalid-query", field=name)


def local_zone_of(body: dict, field: str, value: str, words_with_zone: int, example: str) -> str:
    """The time zone `value` (the body's `field`: a backup schedule, a maintenance window) is read in: the
    body's `local_zone` (the CLI sends its machine's), else UTC when `value` names its own zone (`example`)."""
    local_zone = text_field(body, "local_zone", required=False)
    if local_zone is not None:
        try:
            ZoneInfo(local_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(f"field 'local_zone' must be an IANA time zone name like Europe/Paris, got {local_zone!r}",
                             rule="invalid-field", field="local_zone") from None
        return local_zone
    if len(value.split()) < words_with_zone:
        raise BadRequest(f"missing field 'local_zone': {field} {value!r} names no time zone, so give the one it is "
                         f"in (for example 'Europe/Paris'), or write it in {field} ('{example}')",
                         rule="missing-field", field="local_zone")
    return "UTC"
