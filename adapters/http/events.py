"""The event log over HTTP: JSON pages, and a Server-Sent Events stream resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import web

from adapters.http.inputs import MAX_POSITION, bounded_int, int_query
from adapters.http.keys import ENGINE, STREAMS
from adapters.http.ownership import access_of, visible_events

log = structlog.get_logger("http")
routes = web.RouteTableDef()

PAGE = 100
MAX_PAGE = 1000
POLL_S = 0.5
KEEPALIVE_S = 15.0


@routes.get("/v1/events")
async def event_page(request: web.Request) -> web.Response:
    after = int_query(request, "after", default=0, low=0, high=MAX_POSITION)
    limit = int_query(request, "limit", default=PAGE, low=1, high=MAX_PAGE)
    events = await request.app[ENGINE].event_page(after=after, limit=limit)
    # `next` is past what was read, shown or not: a scoped token sees its apps' events only
    return web.json_response({"events": await visible_events(request, events),
                              "next": events[-1]["id"] if events else after})


def resume_position(request: web.Request) -> int:
    """Last-Event-ID (sent by a reconnecting EventSource) wins over ?after=."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        return bounded_int(header, "header Last-Event-ID (an event id)", low=0, high=MAX_POSITION, rule="invalid-header")
    return int_query(request, "after", default=0, low=0, high=MAX_POSITION)


def sse_frame(event: dict) -> bytes:
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


@routes.get("/v1/events/stream")
async def event_stream(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    position = resume_position(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    streams = request.app[STREAMS]
    task = asyncio.current_task()
    streams.add(task)
    log.info("event stream opened", after=position)
    try:
        await response.write(b"retry: 2000\n\n")
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while engine.access.still_valid(access_of(request)):  # a revoked token's stream ends at once
            events = await engine.event_page(after=position, limit=PAGE)
            shown = await visible_events(request, events)
            for event in shown:
                await response.write(sse_frame(event))
            if events:
                position = events[-1]["id"]
            # Quiet is what this client saw: other apps' events (filtered out) must neither keep its
            # keep-alives away (a proxy cuts an idle stream) nor tell it, by their absence, that others are busy.
            if shown:
                quiet_since = loop.time()
            if len(events) == PAGE:
                continue
            if loop.time() - quiet_since >= KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                quiet_since = loop.time()
            await wait_for_news(engine)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client left, or the server is shutting down
    finally:
        streams.discard(task)
        log.info("event stream closed", at=position)
    return response


async def wait_for_news(engine) -> None:
    """Wake as soon as the engine saves something, or after POLL_S (other writers, e.g. another process)."""
    await engine.wait_for_events(POLL_S)


async def close_streams(app: web.Application) -> None:
    """On shutdown, end the open streams so the server does not wait for them."""
    for task in list(app[STREAMS]):
        task.cancel()
