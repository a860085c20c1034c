"""The aiohttp WebhookSender (adapters/webhooks.py) against a receiver on loopback: a 2xx is taken at
once without reading its body (a receiver streaming one without end costs nothing); another status is a
DeliveryFailed naming it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from adapters.webhooks import HttpWebhookSender
from engine.monitoring_ports import DeliveryFailed


@pytest.fixture
async def receiver():
    async def endless(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(status=200)
        await answer.prepare(request)
        while True:  # a body that never ends
            await answer.write(b"x" * 65536)
            await asyncio.sleep(0.01)

    async def refused(request: web.Request) -> web.Response:
        return web.Response(status=503, reason="Busy")

    app = web.Application()
    app.router.add_post("/endless", endless)
    app.router.add_post("/refused", refused)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_2xx_is_taken_without_reading_its_body_and_another_status_is_named(receiver):
    sender = HttpWebhookSender(timeout_s=3)
    try:
        await sender.post(receiver + "/endless", b"{}", {"Content-Type": "application/json"})  # returns: no read
        with pytest.raises(DeliveryFailed, match="HTTP 503 Busy"):
            await sender.post(receiver + "/refused", b"{}", {})
    finally:
        await sender.close()
