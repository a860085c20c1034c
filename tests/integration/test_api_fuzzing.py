"""Schemathesis fuzzes every operation of the OpenAPI document the server serves, on a real engine and the
real Docker hosts: its coverage phase (the document's examples, boundaries, missing and mistyped parts), then
generated requests, valid (positive) and breaking the document (negative); each answer checked for a server
error and against the document (status, content type, body schema, headers). 0 failures.

Bounded and reproducible: the coverage phase is a fixed list, and a fixed number of generated examples per
operation and mode, derandomized (the same requests on every run). What it may change is kept to this test's
own: path parameter `app` is one of the test's two apps or not an app name at all, the addon it provisions
first is a Starter 256, every further provision is pinned to that plan (at most PROVISIONS addons made) and
every plan change to a Starter 512, webhooks and restart hooks it registers point at a receiver of its own on
loopback (never elsewhere), and every container and volume of its apps is removed at the end."""

from __future__ import annotations

import asyncio
import collections
import functools
import os
import secrets
import time

import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from adapters.http.app import make_app
from domain.errors import DomainError
from domain.names import APP_NAME
from domain.webhook import webhook_url
from tests.integration.api_client import session, url
from tests.integration.conftest import remove_everything_of, running_addon

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# per operation and per mode (positive, negative); REDIS_ADDONS_FUZZ_EXAMPLES=100 for a deeper run by hand
EXAMPLES = int(os.environ.get("REDIS_ADDONS_FUZZ_EXAMPLES", "5"))
SMALLEST_PLAN = "redis-starter-256"
NEXT_PLAN = "redis-starter-512"  # a plan change's (to the smallest: refused, the addon is on it already)
PROVISIONS = 2  # addons the fuzzer may provision besides the test's own
WAIT_S = 1  # a wait=true request waits this long at most
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@pytest.fixture
async def receiver():
    """Where the webhooks and restart hooks the fuzzer registers send their POSTs: loopback, answering 200."""
    async def ok(request):
        await request.read()
        return web.json_response({})

    server = TestServer(web.Application(), port=0)
    server.app.router.add_post("/{tail:.*}", ok)
    await server.start_server()
    yield str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def owned(app_name):
    """The test's second app (the first, app_name, gets a Starter 256 and a backup); its containers and volumes
    removed at the end, after the engine has stopped (asked first by the test, so torn down last)."""
    other = f"{app_name}-b"
    try:
        yield other
    finally:
        await remove_everything_of(other)


async def test_every_operation_answers_as_documented(owned, engine, app_name, receiver):
    server = TestServer(make_app(engine))
    await server.start_server()
    try:
        addon = await running_addon(engine, app_name, SMALLEST_PLAN)
        async with session(engine) as http:
            async def post(path: str, body: dict | None = None) -> dict:
                async with http.post(url(server, path), json=body) as answer:
                    assert answer.status == 201, await answer.text()
                    return await answer.json()

            backup = (await post(f"/v1/apps/{app_name}/addons/{addon}/backups?wait=true"))["backup"]["id"]
            operator_hook = (await post("/v1/webhooks", {"url": receiver}))["webhook"]["id"]
            app_hook = (await post(f"/v1/apps/{app_name}/webhooks", {"url": receiver}))["webhook"]["id"]
            async with http.get(url(server, "/v1/openapi.json")) as served:
                document = await served.json()
        operation = (await engine.operations(addon))[-1]["id"]
        known = {"addon": [addon, "redis"], "backup": [backup, "latest"], "operation_id": [operation],
                 "webhook": [operator_hook, app_hook], "host": ["host-fuzz-none"]}  # never one of the real hosts
        fuzzer = Fuzzer(document, str(server.make_url("")), engine.settings.token_file.read_text().strip(),
                        apps=(app_name, owned), known=known, receiver=receiver)
        started = time.monotonic()
        try:
            await asyncio.to_thread(fuzzer.run)
        finally:
            fuzzer.http.close()
        print(f"fuzzed {len(fuzzer.exercised)} operations of apps {app_name}, {owned}: {fuzzer.calls} requests in "
              f"{time.monotonic() - started:.1f} s")
        print(f"nothing to break in: {sorted(fuzzer.nothing_to_negate)}")
        for label, statuses in sorted(fuzzer.statuses.items()):
            print(f"  {label}: {dict(sorted(statuses.items()))} in {fuzzer.seconds[label]:.1f} s")
        assert fuzzer.exercised == fuzzer.operations
        assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    finally:
        await server.close()


class Fuzzer:
    def __init__(self, document: dict, base_url: str, token: str, apps: tuple[str, ...], known: dict, receiver: str):
        self.schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
        self.base_url, self.apps, self.known, self.receiver = base_url.rstrip("/"), apps, known, receiver
        self.headers = {"Authorization": f"Bearer {token}"}
        self.operations = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
        self.exercised: set[str] = set()
        self.failures: list[str] = []
        self.calls = 0
        self.statuses = collections.defaultdict(collections.Counter)  # what each operation answered, to read
        self.nothing_to_negate: set[str] = set()
        self.seconds = collections.Counter()
        self.provisions = 0
        self.http = requests.Session()

    def run(self) -> None:
        operations = [result.ok() for result in self.schema.get_all_operations()]
        # removals last (the addon the test made serves every other operation first), an app's before the
        # operator's (which may remove an app's webhook too)
        for operation in sorted(operations, key=lambda op: (op.method.upper() == "DELETE", "{app}" not in op.path)):
            self.cover(operation)
            for mode in MODES:
                self.fuzz(operation, mode)

    def cover(self, operation) -> None:
        """Schemathesis's coverage phase: the document's examples, each field's boundaries, each required
        part missing, each type broken — a fixed list, the same on every run."""
        fixed = {name: values[0] for name, values in self.known.items()}
        if "{app}" in operation.path:  # an app's route: its own webhook (the last known), not the operator's
            fixed["webhook"] = self.known["webhook"][-1]
        fixed["app"] = self.apps[0]
        names = {parameter.name for parameter in operation.path_parameters}
        cases = CoverageGenerator(
            operation=operation, generation_modes=list(MODES), auth_storage=None, feedback=FeedbackSources(),
            generation_config=self.schema.config.generation_for(operation=operation, phase="coverage"),
            override=Override(path_parameters={name: value for name, value in fixed.items() if name in names}))
        for case in cases:
            self.send(case, "coverage")

    def fuzz(self, operation, mode) -> None:
        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=self.strategy(operation, mode))
        def one(case):
            self.send(case, mode.value)

        try:
            one()
        except Unsatisfiable:
            # nothing of it to break once `app` is the test's (e.g. GET /health, GET /v1/apps/{app}): its
            # positive run and the coverage phase fuzzed it
            if mode is not schemathesis.GenerationMode.NEGATIVE:
                raise
            self.nothing_to_negate.add(operation.label)

    def send(self, case, phase: str) -> None:
        operation = case.operation
        self.pin(case)
        timeout = 1.5 if operation.path.endswith("/stream") else 30
        response = case.call(base_url=self.base_url, session=self.http, headers=self.headers, timeout=timeout)
        self.calls += 1
        self.seconds[operation.label] += response.elapsed
        self.statuses[operation.label][response.status_code] += 1
        self.exercised.add(operation.label)
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except FailureGroup as group:
            self.failures.append(f"{operation.label} ({phase}): {group}")
            print(self.failures[-1], flush=True)

    def strategy(self, operation, mode):
        """`app` one of the test's apps; each other path parameter a value that names something real, or
        one schemathesis makes up."""
        names = [parameter.name for parameter in operation.path_parameters]
        # not an app name: refused before anything is made (a valid name of another app could get an addon)
        not_a_name = st.text(min_size=1, max_size=60).filter(lambda text: not APP_NAME.fullmatch(text))
        choices = {name: st.one_of(st.sampled_from(self.apps), not_a_name) if name == "app"
                   else st.sampled_from([*([] if name == "host" else [None]), *self.known[name]])
                   for name in names if name == "app" or name in self.known}

        @functools.cache
        def with_fixed(fixed: frozenset):
            return operation.as_strategy(mode, path_parameters={k: v for k, v in fixed if v is not None})

        return st.fixed_dictionaries(choices).flatmap(lambda fixed: with_fixed(frozenset(fixed.items())))

    def pin(self, case) -> None:
        """Keep what a request can make or reach to the test's own: the smallest plan, a few addons, hooks on
        the test's receiver, short waits. Values the server must refuse are left as they are."""
        query, body = case.query or {}, case.body
        timeout = query.get("timeout")
        if isinstance(timeout, int) and not isinstance(timeout, bool) and 1 <= timeout <= 600:
            query["timeout"] = min(timeout, WAIT_S)
        if not isinstance(body, dict):
            return
        for field in ("plan_id", "plan"):
            if isinstance(body.get(field), str):
                body[field] = NEXT_PLAN if case.operation.method.upper() == "PATCH" else SMALLEST_PLAN
        if case.operation.method.upper() == "POST" and case.operation.path == "/v1/apps/{app}/addons":
            if self.provisions >= PROVISIONS:
                body.pop("plan_id", None)
                body.pop("plan", None)  # refused: no addon made
            elif isinstance(body.get("plan_id") or body.get("plan"), str):
                self.provisions += 1
        if case.operation.path == "/v1/hosts" and isinstance(body.get("docker_url"), str):
            body["docker_url"] = "unix:///nonexistent/redis-addons-fuzz.sock"  # a host added connects nowhere else
        if isinstance(body.get("url"), str) and self.accepted_url(body["url"]):
            body["url"] = self.receiver
        restart = body.get("restart") if "restart" in body else body
        if isinstance(restart, dict):
            if isinstance(restart.get("url"), str) and self.accepted_url(restart["url"]):
                restart["url"] = self.receiver
            if isinstance(restart.get("label"), str) and "=" in restart["label"]:
                restart["label"] = f"redis-addons-fuzz={self.apps[0]}"  # no container carries it

    @staticmethod
    def accepted_url(text: str) -> bool:
        try:
            webhook_url(text)
        except DomainError:
            return False
        return True
