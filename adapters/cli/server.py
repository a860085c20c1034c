"""`redis-addons serve`: the engine and the API in this process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import os

import structlog

from adapters.cli import config
from adapters.cli.client import CliError
from adapters.data_lock import DataDirectoryInUse
from adapters.http.serve import serve
from adapters.tls import CertificateAuthorityError
from engine.bootstrap import build
from engine.identity_watch import ProcessIdentityLost
from engine.logs import configure_logging
from engine.ports import EffectError
from engine.settings import Settings, SettingsError
from engine.store import EventStoreUnavailable

log = structlog.get_logger("cli")


def run_server(args) -> int:
    configure_logging(os.environ.get("REDIS_ADDONS_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
        engine = build(settings)

        def record(url: str) -> None:
            # The CLI then finds this server from any directory; the environment variables still win.
            if not config.serve_may_record():
                log.info("CLI configuration left as it is: it names the server you logged in to",
                         file=str(config.config_file()))
                return
            try:
                path = config.save(url, settings.token_file.read_text().strip(), recorded_by="serve")
                log.info("CLI configuration recorded", file=str(path))
            except OSError as e:  # a read-only home: the CLI still works with the environment variables
                log.warning("could not record the CLI configuration", error=e.strerror or str(e))

        asyncio.run(serve(engine, args.host or settings.api_host,
                          args.port if args.port is not None else settings.api_port, on_listening=record))
    except (SettingsError, EffectError, CertificateAuthorityError, DataDirectoryInUse, EventStoreUnavailable,
            ProcessIdentityLost) as e:  # lost: the engine stopped driving; a supervisor restarts this one
        raise CliError(str(e)) from None
    except OSError as e:  # typically: the port is taken
        raise CliError(f"cannot serve the API: {e.strerror or e}") from None
    return 0
