"""The installation's API token and scrape token in PostgreSQL, sealed in the vault (`token/api-token`,
`token/metrics-token`): one of each for every process, so a client holding the token reaches any of them.
Each process writes them to its own data directory's files (0600), where the HTTP API reads them and the
CLI on that machine finds the operator's. A token file already there when the database has none becomes the
installation's: moving a single engine onto PostgreSQL keeps its clients' token."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import structlog

from adapters.postgres.vault import Vault, VaultItems

PREFIX = "token/"
log = structlog.get_logger("shared-tokens")


def share_tokens(vault: Vault, files: dict[str, Path]) -> None:
    """Each token of `files` (item name -> the process's file) made once in PostgreSQL, then written to its file."""
    for name, path in files.items():
        path = Path(path)
        local = path.read_text().strip() if path.exists() else ""
        # Stripped: a token restored from a file export keeps the file's newline.
        token = vault.create_once(PREFIX + name, lambda: local or secrets.token_urlsafe(32)).strip()
        if token != local:
            if local:
                log.warning("token file replaced by the installation's (PostgreSQL holds one token for every "
                            "process)", file=str(path))
            write_token(path, token)


def write_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(token + "\n")
        os.replace(draft, path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise


def token_items(vault: Vault) -> VaultItems:
    return VaultItems(vault, PREFIX, ("api-token", "metrics-token"))
