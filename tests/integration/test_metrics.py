"""GET /metrics scraped by a real Prometheus server (Debian's `prometheus`), with the scrape token from
its file, and answering a PromQL query with the node's own figure; the tokens /metrics takes and refuses."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from engine import build
from tests.integration.conftest import remove_everything_of, running_addon, settings_for

APP = f"it-metrics-{secrets.token_hex(3)}"
SCRAPE_CONFIG = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: redis-addons
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /metrics
    authorization: {{type: Bearer, credentials_file: {token_file}}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("metrics") / "home")) as running:
            yield running
    finally:
        await remove_everything_of(APP)


@pytest.fixture(scope="module")
async def addon(engine) -> str:
    name = await running_addon(engine, APP)
    await engine.stats_sampler.sample_once()  # the sampler's own rounds are off in tests
    return name


@pytest.fixture(scope="module")
async def server(engine):
    server = TestServer(make_app(engine), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def prometheus(engine, server, addon):
    """A Prometheus server on a free loopback port scraping the engine's API every second with the
    scrape token's file; killed by its PID, its directory removed."""
    work = Path(tempfile.mkdtemp(prefix="redis-addons-prometheus-"))
    port = free_port()
    (work / "prometheus.yml").write_text(SCRAPE_CONFIG.format(token_file=engine.settings.metrics_token_file,
                                                              port=server.port))
    with open(work / "prometheus.log", "wb") as log:
        process = await asyncio.create_subprocess_exec(
            "prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await until_ready(http, url, process, work / "prometheus.log")
            yield http, url
    finally:
        process.kill()
        await process.wait()
        shutil.rmtree(work, ignore_errors=True)


async def test_prometheus_scrapes_the_engine_with_the_scrape_token_and_answers_a_promql_query(engine, addon,
                                                                                               prometheus):
    http, url = prometheus
    (node,) = [s for s in engine.stats_sampler.latest_of(addon) if s.role == "data"]
    result = await query_until_found(http, url, f'redis_memory_used_bytes{{addon="{addon}"}}')
    (series,) = result
    assert float(series["value"][1]) == node.database.used_memory
    assert {k: series["metric"][k] for k in ("app", "addon", "node", "role", "job")} == {
        "app": APP, "addon": addon, "node": node.node, "role": "master", "job": "redis-addons"}
    (keys,) = await query_until_found(http, url, f'redis_addons_memory_limit_bytes{{addon="{addon}"}}')
    assert float(keys["value"][1]) == node.container.memory_limit_bytes


async def test_metrics_takes_the_api_token_or_the_scrape_token_and_nothing_else(engine, server):
    api_token = engine.settings.token_file.read_text().strip()
    scrape_token = engine.settings.metrics_token_file.read_text().strip()
    assert engine.settings.metrics_token_file.stat().st_mode & 0o777 == 0o600
    async with aiohttp.ClientSession() as http:
        for token, status in ((None, 401), ("not-the-token", 401), (api_token, 200), (scrape_token, 200)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.get(server.make_url("/metrics"), headers=headers) as response:
                assert response.status == status, (token == api_token, await response.text())
                if status == 200:
                    assert response.content_type == "text/plain"
                    assert "# TYPE redis_addons_step_duration_seconds histogram" in await response.text()
        async with http.get(server.make_url("/v1/apps"), headers={"Authorization": f"Bearer {scrape_token}"}) as response:
            assert response.status == 403
            assert (await response.json())["error"]["rule"] == "scrape-token-metrics-only"


async def test_no_secret_is_in_what_metrics_answers(engine, addon, server):
    password = engine.secrets.peek(addon)
    api_token = engine.settings.token_file.read_text().strip()
    scrape_token = engine.settings.metrics_token_file.read_text().strip()
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/metrics"), headers={"Authorization": f"Bearer {api_token}"}) as response:
            assert response.status == 200
            text = await response.text()
    assert f'addon="{addon}"' in text  # the addon's series are there, its password is not
    assert password and password not in text
    assert api_token not in text and scrape_token not in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until_ready(http: aiohttp.ClientSession, url: str, process, log: Path, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"prometheus exited ({process.returncode}): {log.read_text()[-2000:]}")
            try:
                async with http.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)


async def query_until_found(http: aiohttp.ClientSession, url: str, promql: str, timeout_s: float = 30) -> list[dict]:
    """The query's result once Prometheus has scraped a sample that answers it."""
    async with asyncio.timeout(timeout_s):
        while True:
            async with http.get(f"{url}/api/v1/query", params={"query": promql}) as response:
                body = await response.json()
            assert body["status"] == "success", body
            if body["data"]["result"]:
                return body["data"]["result"]
            await asyncio.sleep(0.5)
