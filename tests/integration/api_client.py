"""What the API and CLI tests share: the CLI run in a thread, and an HTTP session with the token."""

from __future__ import annotations

import asyncio

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
