"""The installation's certificate authority: one EC P-256 CA per installation, kept as
`<dir>/ca.pem` (0644) and `<dir>/ca.key` (0600), which issues the nodes' server certificates.

Clients verify a node with `ca.pem` (what `redis-addons tls-ca` prints). Everything
cryptographic is done by the `cryptography` library. Private keys are never logged,
never put in an exception message, and never shown by `repr`.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
LOCK_FILE = ".ca.lock"
CA_VALIDITY = timedelta(days=3652)  # ten years
CLOCK_SKEW = timedelta(minutes=5)  # certificates are valid from a little before "now"
DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class CertificateAuthorityError(Exception):
    """The CA's files cannot be used (unreadable, garbled, mismatched); the message names the file."""


class CertificateAuthority:
    __slots__ = ("_certificate", "_key", "_certificate_pem")

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self._certificate = certificate
        self._key = key
        self._certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def __repr__(self) -> str:
        return f"<CertificateAuthority {self.subject!r}>"

    # -- loading and creating ------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path) -> "CertificateAuthority":
        """Created once per installation (under a lock, written whole), then always the same."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        with _locked(directory / LOCK_FILE):
            if cert_path.exists():
                if not key_path.exists():
                    raise CertificateAuthorityError(
                        f"{cert_path} exists but its private key {key_path} is missing: "
                        "restore ca.key, or remove ca.pem to make a new CA (clients must then trust the new one)")
                return cls._load(cert_path, key_path)
            if key_path.exists():
                # A crash between writing the key and the certificate: the certificate was never
                # published, so it is made now from the key already on disk.
                key = _load_key(key_path)
            else:
                key = ec.generate_private_key(ec.SECP256R1())
                _write_atomically(key_path, _key_pem(key).encode("ascii"), 0o600)
            authority = cls(_self_signed_ca(key), key)
            _write_atomically(cert_path, authority.certificate_pem.encode("ascii"), 0o644)
            return authority

    @classmethod
    def _load(cls, cert_path: Path, key_path: Path) -> "CertificateAuthority":
        return cls.from_pem(_read(cert_path), _read(key_path), cert_path, key_path)

    @classmethod
    def new(cls) -> "CertificateAuthority":
        """A new CA (a fresh key, a self-signed certificate), in memory: the caller keeps it."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(_self_signed_ca(key), key)

    def private_key_pem(self) -> str:
        """The CA's private key (PKCS#8 PEM), for a store that keeps it sealed (adapters/postgres/authority.py)."""
        return _key_pem(self._key)

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes, cert_source: object = "the CA certificate",
                 key_source: object = "the CA key") -> "CertificateAuthority":
        """The CA from its certificate and key, checked to belong together; errors name the sources."""
        certificate = _parse_certificate(certificate_pem, cert_source)
        key = _parse_key(key_pem, key_source)
        if certificate.public_key().public_numbers() != key.public_key().public_numbers():
            raise CertificateAuthorityError(f"{key_source} is not the private key of the certificate {cert_source}")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise CertificateAuthorityError(f"{cert_source} is not a CA certificate (no basicConstraints CA:true)")
        return cls(certificate, key)

    # -- what it offers ------------------------------------------------------------------

    @property
    def certificate_pem(self) -> str:
        """The CA certificate, for clients to verify the nodes (`redis-addons tls-ca`)."""
        return self._certificate_pem

    @property
    def subject(self) -> str:
        return self._certificate.subject.rfc4514_string()

    @property
    def not_valid_after(self) -> datetime:
        return self._certificate.not_valid_after_utc

    def issue_server_certificate(self, address: str, names: tuple[str, ...] = ("localhost",),
                                 days: int = 825, also_at: tuple[str, ...] = ()) -> tuple[str, str]:
        """(certificate PEM, private key PEM) for a node bound to `address`: its subject alternative
        names are that IP, the IPs `also_at` (where clients reach it through a proxy that passes TLS
        on) and the DNS `names`; serverAuth only; a fresh EC P-256 key; signed by the CA. Never valid
        beyond the CA itself."""
        try:
            ip = ipaddress.ip_address(address)
            others = [ipaddress.ip_address(a) for a in also_at]
        except ValueError:
            raise ValueError(f"not an IP address: {address!r} or one of {list(also_at)!r}") from None
        if isinstance(names, str):
            raise TypeError("names must be a tuple of DNS names, not a string")
        for name in names:
            if not isinstance(name, str) or not DNS_NAME.match(name):
                raise ValueError(f"not a DNS name: {name!r}")
        return self._issue(str(ip), alt_names=[x509.IPAddress(a) for a in dict.fromkeys([ip, *others])]
                           + [x509.DNSName(name) for name in dict.fromkeys(names)],
                           usage=ExtendedKeyUsageOID.SERVER_AUTH, days=days)

    def issue_client_certificate(self, name: str, days: int = 825) -> tuple[str, str]:
        """(certificate PEM, private key PEM) a client shows to a server that asks for one (a Docker host's
        dockerd --tlsverify): subject CN `name`, clientAuth only, no alternative names."""
        if not isinstance(name, str) or not DNS_NAME.match(name):
            raise ValueError(f"not a client name (letters, digits, dots and hyphens): {name!r}")
        return self._issue(name, alt_names=[], usage=ExtendedKeyUsageOID.CLIENT_AUTH, days=days)

    def _issue(self, common_name: str, alt_names: list[x509.GeneralName], usage: x509.ObjectIdentifier,
               days: int) -> tuple[str, str]:
        """A fresh EC P-256 key and its certificate for one `usage`, signed by the CA, never valid beyond it."""
        if days < 1:
            raise ValueError(f"days must be at least 1, not {days}")
        now = datetime.now(timezone.utc)
        not_after = min(now + timedelta(days=days), self._certificate.not_valid_after_utc)
        key = ec.generate_private_key(ec.SECP256R1())
        ca_ski = self._certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "redis-addons"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        certificate = (
            builder
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), _key_pem(key)


# -- helpers --------------------------------------------------------------------------------

def _self_signed_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    installation_id = secrets.token_hex(8)  # two installations' CAs never share a subject
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "redis-addons"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"redis-addons CA {installation_id}"),
    ])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CertificateAuthorityError(f"cannot read {path}: {error.strerror or type(error).__name__}") from None


def _parse_certificate(data: bytes, source: object) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertificateAuthorityError(f"{source} is not a PEM certificate (garbled or truncated)") from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return _parse_key(_read(path), path)


def _parse_key(data: bytes, source: object) -> ec.EllipticCurvePrivateKey:
    # `from None` everywhere: the library's error must not drag the key's bytes along.
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CertificateAuthorityError(f"{source} is not an unencrypted PEM private key (garbled or truncated)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateAuthorityError(f"{source} is not an EC P-256 private key")
    return key


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Written whole to a draft with its final mode, synced, then renamed into place."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask does not decide a key's mode
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(draft, path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


@contextmanager
def _locked(path: Path):
    """Two processes starting at once on a new installation make one CA, not two."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
