"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

import asyncio

from aiohttp import web

from engine.app import Engine

ENGINE = web.AppKey("engine", Engine)
STREAMS = web.AppKey("streams", set[asyncio.Task])
