"""What an engine keeps beside its event log, chosen by where the log is: the data directory's files on SQLite
(as always), PostgreSQL shared by every process of the installation when the log is there (this package).
engine/bootstrap.py wires these in; the control plane's export and restore reach the PostgreSQL ones through
`postgres_item_stores` (engine/recovery_ports.ItemStore)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.checkpoints import FileCheckpoints
from adapters.data_lock import FileDataLock
from adapters.secrets_store import FileSecretStore
from adapters.storage.backup_keys import BackupKeys
from adapters.tls import CertificateAuthority
from engine.ports import EffectError
from engine.settings import Settings


@dataclass
class SharedState:
    secrets: object  # engine.ports.SecretStore: addon passwords
    webhook_secrets: object  # engine.ports.SecretStore: webhook signing secrets
    authority: CertificateAuthority
    backup_keys: BackupKeys
    checkpoints: object  # engine.ports.Checkpoints
    data_lock: object  # engine.ports.DataLock
    duties_lock: object = None  # engine.duties.DutiesLock; None: this process runs the duties, alone on its files
    placement_lock: object = None  # engine.placing.PlacementLock; None: this process places alone


def shared_state(settings: Settings) -> SharedState:
    if not settings.on_postgres:
        return on_files(settings)
    from adapters.postgres.connection import SharedStateUnavailable

    try:
        return on_postgres(settings)
    except SharedStateUnavailable as error:  # at start: nothing to retry, the operator must look
        raise EffectError(f"{error}: the engine cannot start without the installation's shared state "
                          "(its secrets, CA and tokens are kept there)") from None


def on_files(settings: Settings) -> SharedState:
    secrets = FileSecretStore(settings.secrets_dir)
    webhook_secrets = FileSecretStore(settings.home / "webhook-secrets")  # signing secrets, beside the passwords
    keys = BackupKeys(settings.backup_keys_file, settings.backup_key)
    return SharedState(secrets, webhook_secrets, CertificateAuthority.load_or_create(settings.tls_dir), keys,
                       FileCheckpoints(settings.checkpoints_dir), FileDataLock(settings.home))


def on_postgres(settings: Settings) -> SharedState:
    # Imported here: psycopg (the `postgres` extra) is needed only by an installation on PostgreSQL.
    from adapters.postgres.authority import shared_authority
    from adapters.postgres.duties_lock import PostgresDutiesLock
    from adapters.postgres.placement_lock import PostgresPlacementLock
    from adapters.postgres.process_lock import PostgresProcessLock
    from adapters.postgres.tokens import share_tokens

    stores = postgres_item_stores(settings)
    vault = stores["addon-passwords"].vault
    share_tokens(vault, {"api-token": settings.token_file, "metrics-token": settings.metrics_token_file})
    lock = PostgresProcessLock(vault.database.options, settings.process_id, FileDataLock(settings.home),
                               on_release=vault.database.close, lease_s=settings.lease_s)
    return SharedState(stores["addon-passwords"], stores["webhook-secrets"], shared_authority(vault, settings.tls_dir),
                       stores["backup-keyring"], stores["checkpoints"], lock,
                       PostgresDutiesLock(vault.database.options, settings.lease_s),
                       PostgresPlacementLock(vault.database.options, settings.lease_s))


def postgres_item_stores(settings: Settings) -> dict:
    """Section -> engine.recovery_ports.ItemStore of what PostgreSQL keeps for an installation on it, for the
    control plane's export and restore: made without putting anything in them (a restore wants them empty);
    only the installation key's file is made on a database without secrets (vault.open_vault). The hosts file
    stays the data directory's."""
    from adapters.postgres.authority import authority_items
    from adapters.postgres.checkpoints import PostgresCheckpoints
    from adapters.postgres.connection import Database, connection_options
    from adapters.postgres.keyring import PostgresBackupKeys
    from adapters.postgres.secrets import PostgresSecretStore
    from adapters.postgres.tokens import token_items
    from adapters.postgres.vault import open_vault

    database = Database(connection_options(settings.store_env))
    vault = open_vault(database, settings.secrets_key_file)
    return {"addon-passwords": PostgresSecretStore(vault, "password"),
            "webhook-secrets": PostgresSecretStore(vault, "webhook"),
            "certificate-authority": authority_items(vault),
            "backup-keyring": PostgresBackupKeys(vault, settings.backup_key),
            "tokens": token_items(vault),
            "checkpoints": PostgresCheckpoints(database)}


def backup_keyring(settings: Settings) -> BackupKeys:
    """The backup keyring `backup-key` works on: the data directory's file, or PostgreSQL's (where the command
    never makes the installation key: it must find the installation's)."""
    if not settings.on_postgres:
        return BackupKeys(settings.backup_keys_file, settings.backup_key)
    from adapters.postgres.connection import Database, connection_options
    from adapters.postgres.keyring import PostgresBackupKeys
    from adapters.postgres.vault import open_vault

    vault = open_vault(Database(connection_options(settings.store_env)), settings.secrets_key_file, may_make=False)
    return PostgresBackupKeys(vault, settings.backup_key)


def installation_authority(settings: Settings) -> CertificateAuthority:
    """The installation's CA for a command beside the engine (issuing a Docker host's certificates): the data
    directory's, or PostgreSQL's (never making the installation key there: it must find the installation's)."""
    if not settings.on_postgres:
        return CertificateAuthority.load_or_create(settings.tls_dir)
    from adapters.postgres.authority import shared_authority
    from adapters.postgres.connection import Database, connection_options
    from adapters.postgres.vault import open_vault

    database = Database(connection_options(settings.store_env))
    try:
        return shared_authority(open_vault(database, settings.secrets_key_file, may_make=False), settings.tls_dir)
    finally:
        database.close()
