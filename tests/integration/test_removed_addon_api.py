"""A removed addon through the real API: what refuses it answers 409 addon-removed, as its OpenAPI
entry says; its backups stay listed and downloadable (the 409 the source reading finds on those
routes cannot happen: tests/unit/test_openapi_statuses.py CANNOT_HAPPEN)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.app import make_app
from tests.integration.conftest import running_addon


@pytest.fixture
async def client(engine):
    async with TestClient(TestServer(make_app(engine))) as test_client:
        test_client.headers = {"Authorization": f"Bearer {engine.settings.token_file.read_text().strip()}"}
        yield test_client


async def documented(client, method: str, route: str) -> set[int]:
    document = await (await client.get("/v1/openapi.json", headers=client.headers)).json()
    return {int(s) for s in document["paths"][route][method.lower()]["responses"]}


async def test_a_removed_addon_is_a_documented_409_and_its_backups_stay(engine, client, app_name):
    addon = await running_addon(engine, app_name)
    made = await engine.backups.create(app_name, addon)
    assert (await engine.wait_for_operation(made["operation_id"], timeout=120))["status"] == "succeeded"
    removal = await engine.remove_addon(app_name, addon)
    assert (await engine.wait_for_operation(removal["operation_id"], timeout=120))["status"] == "succeeded"

    base = "/v1/apps/{app}/addons/{addon}"
    refused = [
        ("GET", base + "/settings", None),
        ("PUT", base + "/settings/{setting}", {"enabled": True}),
        ("GET", base + "/tls_ca", None),
        ("GET", base + "/version", None),
        ("GET", base + "/backup_schedule", None),
        ("PUT", base + "/backup_schedule", {"schedule_at": "4:00 UTC"}),
        ("POST", base + "/backups", None),
        ("POST", base + "/backups/{backup}/restore", None),
        ("PATCH", base, {"plan_id": "redis-starter-512"}),
        ("DELETE", base, None),
    ]
    for method, route, body in refused:
        path = route.format(app=app_name, addon=addon, setting="aof", backup=made["backup_id"])
        response = await client.request(method, path, json=body, headers=client.headers)
        error = (await response.json())["error"]
        assert (response.status, error["rule"]) == (409, "addon-removed"), (method, route, error)
        assert 409 in await documented(client, method, route), (method, route)

    kept = [base + "/backups", base + "/backups/{backup}", base + "/backups/{backup}/archive"]
    for route in kept:
        response = await client.get(route.format(app=app_name, addon=addon, backup=made["backup_id"]),
                                    headers=client.headers)
        assert response.status == 200, (route, await response.text())
