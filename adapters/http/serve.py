"""Run the engine behind the API until SIGTERM or SIGINT, then stop both cleanly."""

from __future__ import annotations

import asyncio
import os
import signal

import structlog
from aiohttp import web

from adapters.http.app import make_app
from engine import audit
from engine.app import Engine

log = structlog.get_logger("http")


async def serve(engine: Engine, host: str | None = None, port: int | None = None, stop: asyncio.Event | None = None,
                on_listening=None) -> None:
    """Serve on settings.api_host:api_port by default; returns once `stop` is set or a signal arrives.
    `on_listening(url)` is called once the API answers (the CLI records where it is). Raises ProcessIdentityLost,
    once all is stopped, when another process took this one's identity (engine/identity_watch.py)."""
    host = host or engine.settings.api_host
    port = engine.settings.api_port if port is None else port
    stop = stop or asyncio.Event()
    app = make_app(engine)
    url_file = engine.settings.home / "api-url"
    with signals_set(stop):
        await start_engine(engine)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
        try:
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            url = listening_url(runner, host, port)
            if engine.data_lock is not None:  # a second engine refused on this data names this API
                engine.data_lock.announce(url)
            if on_listening is not None:  # before api-url, which tells that the server is up
                on_listening(url)
            write_atomically(url_file, url + "\n")
            log.info("API listening", api=url, dashboard=(engine.settings.public_url or url) + "/dashboard", token_file=str(engine.settings.token_file),
                     scrape_token_file=str(engine.settings.metrics_token_file))  # where Prometheus' token is
            await first_of(stop, engine.identity.lost)
            log.info("API stopping")
        finally:
            url_file.unlink(missing_ok=True)
            await runner.cleanup()  # stops accepting, ends event streams, lets requests finish
            await engine.stop()
            log.info("stopped")
    if engine.identity.error is not None:
        raise engine.identity.error


async def first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


async def start_engine(engine: Engine) -> None:
    try:
        with audit.requested_by(audit.ENGINE):  # operations it resumes go on as the engine's own (engine/audit.py)
            await engine.start()
    except BaseException:
        try:
            await engine.stop()  # release what the failed start opened (Docker clients, store)
        except Exception as e:
            log.warning("cleanup after a failed start", error=f"{type(e).__name__}: {e}")
        raise


def listening_url(runner: web.AppRunner, host: str, port: int) -> str:
    """The real address (port 0 means the system picked one)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host, port = address[0], address[1]
            break
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def write_atomically(path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class signals_set:
    """SIGTERM and SIGINT set `stop` while inside the block."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stop: asyncio.Event):
        self.stop = stop
        self.loop = asyncio.get_running_loop()

    def __enter__(self):
        for sig in self.SIGNALS:
            self.loop.add_signal_handler(sig, self.stop.set)
        return self

    def __exit__(self, *exc):
        for sig in self.SIGNALS:
            self.loop.remove_signal_handler(sig)
