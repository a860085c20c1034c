"""Structured logs: JSON lines when not on a terminal, readable lines when on one."""

from __future__ import annotations

import logging
import sys

import structlog

SECRET_KEYS = {"password", "token", "authorization", "requirepass", "url"}


def drop_secrets(_, __, event_dict: dict) -> dict:
    """A last guard: keys that may hold a secret never reach a log line."""
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = "[hidden]"
    return event_dict


def configure_logging(level: str = "INFO", stream=None) -> None:
    stream = stream or sys.stderr
    renderer = structlog.dev.ConsoleRenderer() if stream.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
