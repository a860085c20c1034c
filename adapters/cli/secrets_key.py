"""`secrets-key new FILE`: a new installation key, for the secrets an installation on PostgreSQL keeps there
(adapters/postgres/sealing.py), written to a new 0600 file: made before the first start, it can be given to
every engine process at once (REDIS_ADDONS_SECRETS_KEY_FILE). A file already there is never replaced."""

from __future__ import annotations

from pathlib import Path

from adapters.cli.client import CliError
from adapters.postgres.sealing import KEY_FILE_ENV, SecretsKeyError, write_key_file


def secrets_key(args) -> int:
    try:
        key = write_key_file(Path(args.file))
    except (SecretsKeyError, OSError) as e:
        raise CliError(str(e) if isinstance(e, SecretsKeyError) else f"cannot write {args.file}: {e.strerror or e}") \
            from None
    print(f"installation secrets key {key.id} written to {args.file} (0600): give every engine process of the "
          f"installation a copy ({KEY_FILE_ENV}), and keep one elsewhere")
    return 0
