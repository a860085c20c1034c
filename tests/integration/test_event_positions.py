"""Event positions a client sends (`after`, `Last-Event-ID`) past what the event log can hold, or
not written in ASCII digits, are 400s naming the parameter, through the real HTTP API."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.app import make_app

LARGEST = 2**63 - 2  # a page starts at after + 1, the largest signed 64-bit integer
TOO_LARGE = ["9223372036854775807", "9223372036854775808", "18446744073709551616", "1" + "0" * 30, "9" * 5000]
NOT_ASCII = ["١٢", "４"]


def short(value: str) -> str:
    return value if len(value) <= 30 else f"{len(value)}-digits"


@pytest.fixture
async def client(engine):
    async with TestClient(TestServer(make_app(engine))) as test_client:
        test_client.headers = {"Authorization": f"Bearer {engine.settings.token_file.read_text().strip()}"}
        yield test_client


@pytest.mark.parametrize("after", TOO_LARGE + NOT_ASCII, ids=short)
async def test_an_after_the_log_cannot_hold_is_a_400_naming_it(client, after):
    response = await client.get("/v1/events", params={"after": after}, headers=client.headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "invalid-query" and error["field"] == "after"
    assert "'after'" in error["message"]
    assert len(error["message"]) < 200  # a huge value is cut short, not echoed whole
    if after in TOO_LARGE:
        assert f"between 0 and {LARGEST}" in error["message"]


@pytest.mark.parametrize("after", TOO_LARGE + NOT_ASCII, ids=short)
async def test_the_stream_refuses_the_same_after(client, after):
    response = await client.get("/v1/events/stream", params={"after": after}, headers=client.headers)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "after"


@pytest.mark.parametrize("last_event_id", TOO_LARGE + NOT_ASCII, ids=short)
async def test_a_last_event_id_the_log_cannot_hold_is_a_400_naming_the_header(client, last_event_id):
    response = await client.get("/v1/events/stream", headers={**client.headers, "Last-Event-ID": last_event_id})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["rule"] == "invalid-header"
    assert "Last-Event-ID" in error["message"]


async def test_the_largest_position_is_an_empty_page(client):
    response = await client.get("/v1/events", params={"after": str(LARGEST)}, headers=client.headers)
    assert response.status == 200
    assert await response.json() == {"events": [], "next": LARGEST}


async def test_the_stream_opens_at_the_largest_position(client):
    headers = {**client.headers, "Last-Event-ID": str(LARGEST)}
    async with client.get("/v1/events/stream", headers=headers) as response:
        assert response.status == 200
        assert await response.content.readline() == b"retry: 2000\n"
