"""`export --to FILE` and `restore-control-plane --from FILE`: the control plane's whole state in one archive
sealed with a passphrase, and back into a new data directory (engine/control_plane_export.py). Run on the
engine's machine, against $REDIS_ADDONS_HOME and the event store the engine's settings name, never through
the API: the archive holds every secret of the installation.

The passphrase comes from --passphrase-file, $REDIS_ADDONS_ARCHIVE_PASSPHRASE or a prompt, never from an
argument (arguments show in `ps` and in the shell's history); it is never printed."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from adapters.cli.client import CliError
from engine.recovery_ports import RecoveryRefused
from engine.settings import Settings, SettingsError

PASSPHRASE_ENV = "REDIS_ADDONS_ARCHIVE_PASSPHRASE"
BACKUP_KEY_ENV = "REDIS_ADDONS_BACKUP_KEY"  # adapters/storage/backup_keys.py's ENV (not imported: --help stays quick)


def arguments(export, restore) -> None:
    export.add_argument("--to", required=True, metavar="FILE", help="the archive to write (replaced only once whole)")
    restore.add_argument("--from", dest="source", required=True, metavar="FILE", help="the archive `export` wrote")
    for p in (export, restore):
        p.allow_abbrev = False  # `--passphrase SECRET` is no abbreviation of --passphrase-file: refused, never a path
        p.add_argument("--passphrase-file", metavar="PATH", help=f"a file holding the passphrase (else ${PASSPHRASE_ENV}, "
                       "else a prompt)")


def export(args, env=os.environ, stdin=None) -> int:
    settings = settings_of(env)
    if not settings.home.is_dir() or (is_sqlite(settings) and not Path(settings.store_env["SQLITE_DBNAME"]).exists()):
        raise CliError(f"no control plane at {settings.home} (no event store there): set REDIS_ADDONS_HOME to the "
                       "engine's data directory")
    passphrase = passphrase_of(args, env, stdin, confirm=True)
    hosts = Path(env.get("REDIS_ADDONS_HOSTS") or settings.home / "hosts.json")
    from engine.bootstrap import export_control_plane  # the engine's modules only here: `--help` stays quick

    counts = run(export_control_plane, settings, Path(args.to), passphrase, hosts)
    print(f"-----> Control plane exported to {args.to} ({counts['size']:,} bytes): {said(counts)}")
    if settings.backup_key:
        print(f"       the backup keys of ${BACKUP_KEY_ENV} are not in it (only the keyring file's): keep that "
              "variable's value with it")
    print(f"       Keep it off this machine, and its passphrase apart from it. Backups are not in it: keep "
          f"{settings.backups_dir} (or your backup store) too")
    return 0


def restore(args, env=os.environ, stdin=None) -> int:
    settings = settings_of(env)
    passphrase = passphrase_of(args, env, stdin, confirm=False)
    from engine.bootstrap import restore_control_plane

    counts = run(restore_control_plane, settings, Path(args.source), passphrase)
    print(f"-----> Control plane restored into {settings.home}: {said(counts)}")
    print(f"       Put the backups back at {settings.backups_dir} (or point at your backup store), then start the "
          "engine there: REDIS_ADDONS_HOME=" + str(settings.home) + " redis-addons serve")
    return 0


def settings_of(env) -> Settings:
    """The engine's settings but its hosts: a restore brings the hosts file, an export copies it as it is."""
    try:
        return Settings.from_env(env, hosts=())
    except SettingsError as e:
        raise CliError(str(e)) from None


def is_sqlite(settings: Settings) -> bool:
    return settings.store_env.get("PERSISTENCE_MODULE") == "eventsourcing.sqlite"


def run(action, *arguments) -> dict:
    from eventsourcing.persistence import PersistenceError

    from adapters.data_lock import DataDirectoryInUse
    from engine.ports import TransientError  # the event store or PostgreSQL's shared state not answering

    try:
        return action(*arguments)
    except (RecoveryRefused, SettingsError, DataDirectoryInUse, TransientError, ValueError) as e:
        raise CliError(str(e)) from None
    except PersistenceError as e:  # the database itself: unreachable, refused
        raise CliError(f"the event store cannot be used: {e}") from None
    except OSError as e:
        raise CliError(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")) from None


def said(counts: dict) -> str:
    parts = [f"{counts['events']:,} events"]
    parts += [f"{section} {counts[section]}" for section in counts if section not in ("events", "last_position", "size")]
    return ", ".join(parts)


def passphrase_of(args, env, stdin, confirm: bool) -> str:
    stdin = stdin or sys.stdin
    if args.passphrase_file:
        try:
            text = Path(args.passphrase_file).read_text()
        except OSError as e:
            raise CliError(f"cannot read the passphrase file {args.passphrase_file}: {e.strerror or e}") from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise CliError(f"the passphrase file {args.passphrase_file} is empty")
        return text
    if env.get(PASSPHRASE_ENV):
        return env[PASSPHRASE_ENV]
    if not stdin.isatty():
        raise CliError(f"no passphrase: give --passphrase-file PATH or ${PASSPHRASE_ENV}, or run it at a terminal "
                       "to be asked (never on the command line)")
    typed = getpass.getpass("Archive passphrase: ")
    if confirm and getpass.getpass("The same passphrase again: ") != typed:
        raise CliError("the two passphrases differ: nothing was written")
    if not typed:
        raise CliError("no passphrase given")
    return typed
