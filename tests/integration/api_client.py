"""What the API and CLI tests share: the CLI run in a thread, and an HTTP session with the token."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from adapters.cli.main import main


async def cli(*argv: str) -> int:
    """Run the CLI in a thread: it blocks on HTTP while this loop serves it."""
    return await asyncio.to_thread(main, list(argv))


def token(engine) -> str:
    return engine.settings.token_file.read_text().strip()


def session(engine) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token(engine)}"})


def url(server, path: str) -> str:
    return str(server.make_url(path))


@contextlib.asynccontextmanager
async def module_engine(tmp_path_factory, name: str, *apps: str):
    """An engine on a fresh home for a whole test module; every container and volume of `apps` removed at the end."""
    from engine import build
    from tests.integration.conftest import remove_everything_of, settings_for

    try:
        async with build(settings_for(tmp_path_factory.mktemp(name) / "home")) as running:
            yield running
    finally:
        for app in apps:
            await remove_everything_of(app)


@contextlib.asynccontextmanager
async def api_server(engine):
    """The engine's HTTP API served on loopback (aiohttp's TestServer)."""
    from aiohttp.test_utils import TestServer

    from adapters.http.app import make_app

    server = TestServer(make_app(engine))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
