"""The installation's certificate authority kept in PostgreSQL: its certificate and private key sealed in the
vault (`ca/ca.pem`, `ca/ca.key`), made once by whichever process starts first, the same for every process.
Each process also writes the certificate (public) to its own `<data directory>/tls/ca.pem`, the file the
Redis clients of the engine verify the nodes with; the private key never touches its disk."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.postgres.vault import Vault, VaultItems
from adapters.tls import CA_CERT_FILE, CertificateAuthority

PREFIX = "ca/"
CERT, KEY = PREFIX + "ca.pem", PREFIX + "ca.key"


def shared_authority(vault: Vault, tls_dir: Path) -> CertificateAuthority:
    stored = {CERT: vault.get(CERT), KEY: vault.get(KEY)}
    if None in stored.values():
        made = CertificateAuthority.new()  # the key first: a certificate is never stored without its key
        stored = vault.create_all_once({KEY: made.private_key_pem(), CERT: made.certificate_pem})
    authority = CertificateAuthority.from_pem(stored[CERT].encode(), stored[KEY].encode(),
                                              "the CA certificate in PostgreSQL", "the CA key in PostgreSQL")
    publish_certificate(Path(tls_dir) / CA_CERT_FILE, authority.certificate_pem)
    return authority


def publish_certificate(path: Path, pem: str) -> None:
    """The CA certificate at `path` (0644), replaced whole when it differs."""
    if path.exists() and path.read_text() == pem:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    draft.write_text(pem)
    os.chmod(draft, 0o644)
    os.replace(draft, path)


def authority_items(vault: Vault) -> VaultItems:
    return VaultItems(vault, PREFIX, (CERT[len(PREFIX):], KEY[len(PREFIX):]))
