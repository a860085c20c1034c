"""The installation's certificate authority, proved with real parts: the machine's `openssl verify`,
a real TLS `redis-server` (Debian's 7.0.15, started here on 127.0.0.1 and stopped by its PID),
redis-py and `redis-cli --tls`. No mocks."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.tls import CertificateAuthority, CertificateAuthorityError

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli")
OPENSSL = shutil.which("openssl")
LOOPBACK = "127.0.0.1"


def test_created_once_then_loaded_identically(tmp_path):
    directory = tmp_path / "tls"
    made = CertificateAuthority.load_or_create(directory)
    pem = (directory / "ca.pem").read_text()
    key = (directory / "ca.key").read_bytes()

    loaded = CertificateAuthority.load_or_create(directory)

    assert made.certificate_pem == loaded.certificate_pem == pem
    assert (directory / "ca.key").read_bytes() == key, "loading must not rewrite the key"
    assert stat.S_IMODE((directory / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "ca.pem").stat().st_mode) == 0o644
    certificate = x509.load_pem_x509_certificate(pem.encode())
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert certificate.public_key().curve.name == "secp256r1"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 3650 <= lifetime.days <= 3653
    assert certificate.subject.rfc4514_string().startswith("CN=redis-addons CA ")
    assert "PRIVATE KEY" not in repr(made) and "PRIVATE KEY" not in made.certificate_pem


def test_two_installations_have_different_authorities(tmp_path):
    one = CertificateAuthority.load_or_create(tmp_path / "one")
    two = CertificateAuthority.load_or_create(tmp_path / "two")
    assert one.certificate_pem != two.certificate_pem
    assert one.subject != two.subject


def test_garbled_certificate_is_a_clear_error_naming_the_file(tmp_path):
    directory = tmp_path / "tls"
    CertificateAuthority.load_or_create(directory)
    (directory / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")

    with pytest.raises(CertificateAuthorityError) as raised:
        CertificateAuthority.load_or_create(directory)

    assert str(directory / "ca.pem") in str(raised.value)
    assert raised.value.__cause__ is None


def test_garbled_or_unreadable_key_is_a_clear_error_that_shows_no_key(tmp_path):
    directory = tmp_path / "tls"
    CertificateAuthority.load_or_create(directory)
    key = (directory / "ca.key").read_text()
    (directory / "ca.key").write_text(key[: len(key) // 2])

    with pytest.raises(CertificateAuthorityError) as raised:
        CertificateAuthority.load_or_create(directory)
    assert str(directory / "ca.key") in str(raised.value)
    assert key.splitlines()[1] not in str(raised.value)

    (directory / "ca.key").unlink()
    (directory / "ca.key").mkdir()  # unreadable as a file, whoever runs the test (even root)
    with pytest.raises(CertificateAuthorityError, match="cannot read .*ca.key"):
        CertificateAuthority.load_or_create(directory)


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path):
    CertificateAuthority.load_or_create(tmp_path / "one")
    CertificateAuthority.load_or_create(tmp_path / "two")
    shutil.copy(tmp_path / "two" / "ca.key", tmp_path / "one" / "ca.key")
    with pytest.raises(CertificateAuthorityError, match="not the private key"):
        CertificateAuthority.load_or_create(tmp_path / "one")


def test_certificate_without_its_key_is_an_error_not_a_new_ca(tmp_path):
    directory = tmp_path / "tls"
    CertificateAuthority.load_or_create(directory)
    (directory / "ca.key").unlink()
    with pytest.raises(CertificateAuthorityError, match="missing"):
        CertificateAuthority.load_or_create(directory)
    assert not (directory / "ca.key").exists()


def test_a_key_left_by_a_crash_before_the_certificate_becomes_the_ca(tmp_path):
    directory = tmp_path / "tls"
    CertificateAuthority.load_or_create(directory)
    key = (directory / "ca.key").read_bytes()
    (directory / "ca.pem").unlink()  # as if the process died between writing the two files

    ca = CertificateAuthority.load_or_create(directory)

    assert (directory / "ca.key").read_bytes() == key
    assert (directory / "ca.pem").read_text() == ca.certificate_pem


def test_processes_starting_together_make_one_ca(tmp_path):
    directory = tmp_path / "tls"
    program = ("import sys; from pathlib import Path; from adapters.tls import CertificateAuthority; "
               "sys.stdout.write(CertificateAuthority.load_or_create(Path(sys.argv[1])).certificate_pem)")
    repo = Path(__file__).resolve().parents[2]
    processes = [subprocess.Popen([sys.executable, "-c", program, str(directory)], cwd=repo,
                                  stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = {process.communicate(timeout=60)[0] for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert outputs == {(directory / "ca.pem").read_text()}
    assert sorted(path.name for path in directory.iterdir()) == [".ca.lock", "ca.key", "ca.pem"]


def test_server_certificate_names_and_usage(tmp_path):
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    cert_pem, key_pem = ca.issue_server_certificate("127.0.1.1", names=("localhost", "node-1.example"))

    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)] == ["127.0.1.1"]
    assert alt.get_values_for_type(x509.DNSName) == ["localhost", "node-1.example"]
    assert certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.public_key().curve.name == "secp256r1"
    assert certificate.issuer.rfc4514_string() == ca.subject
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ValueError):
        ca.issue_server_certificate("not-an-ip")
    with pytest.raises(ValueError):
        ca.issue_server_certificate("127.0.0.1", names=("bad name",))


@pytest.mark.skipif(OPENSSL is None, reason="no openssl on this machine")
def test_server_certificate_verifies_with_openssl(tmp_path):
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    cert_pem, _ = ca.issue_server_certificate("127.0.1.1")
    (tmp_path / "server.pem").write_text(cert_pem)

    ok = subprocess.run([OPENSSL, "verify", "-x509_strict", "-purpose", "sslserver",
                         "-CAfile", str(tmp_path / "tls" / "ca.pem"), str(tmp_path / "server.pem")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(": OK")

    refused = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "other" / "ca.pem"),
                              str(tmp_path / "server.pem")], capture_output=True, text=True)
    assert refused.returncode != 0
    assert other.certificate_pem != ca.certificate_pem


# -- a real redis-server with TLS ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _client(port: int, **tls) -> redis.Redis:
    # No retries: a refused handshake is the answer, not something to try again.
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=5, socket_connect_timeout=5,
                       retry=Retry(NoBackoff(), 0), **tls)


@pytest.fixture
def tls_redis(request, tmp_path):
    """A real `redis-server` serving only TLS on 127.0.0.1, with a certificate from a fresh CA issued
    for 127.0.0.1 (or, with indirect parametrization, for another address)."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"no redis-server at {REDIS_SERVER}")
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    cert_pem, key_pem = ca.issue_server_certificate(getattr(request, "param", LOOPBACK))
    (tmp_path / "server.pem").write_text(cert_pem)
    (tmp_path / "server.key").touch(mode=0o600)
    (tmp_path / "server.key").write_text(key_pem)
    port = _free_port()
    log = tmp_path / "redis.log"
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", LOOPBACK,
         "--tls-cert-file", str(tmp_path / "server.pem"), "--tls-key-file", str(tmp_path / "server.key"),
         "--tls-ca-cert-file", str(tmp_path / "tls" / "ca.pem"), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path), "--logfile", str(log),
         "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}: {log.read_text() if log.exists() else ''}")
            try:
                socket.create_connection((LOOPBACK, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not listen on {LOOPBACK}:{port} within 10 s")
                time.sleep(0.05)
        yield port, tmp_path / "tls" / "ca.pem"
    finally:
        process.terminate()  # this process, by its PID
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_a_real_redis_server_with_our_certificate_is_trusted_through_our_ca(tls_redis):
    port, ca_file = tls_redis
    client = _client(port, ssl=True, ssl_ca_certs=str(ca_file), ssl_cert_reqs="required", ssl_check_hostname=True)
    try:
        assert client.ping() is True
        assert client.set("k", "v") and client.get("k") == b"v"
    finally:
        client.close()


def test_a_client_trusting_another_installations_ca_refuses_the_server(tls_redis, tmp_path):
    port, _ = tls_redis
    other = CertificateAuthority.load_or_create(tmp_path / "another-installation")
    client = _client(port, ssl=True, ssl_ca_certs=str(tmp_path / "another-installation" / "ca.pem"),
                     ssl_cert_reqs="required")
    try:
        with pytest.raises(redis.exceptions.ConnectionError) as raised:
            client.ping()
    finally:
        client.close()
    assert isinstance(raised.value.__context__, ssl.SSLCertVerificationError), repr(raised.value.__context__)
    assert "certificate verify failed" in str(raised.value)
    assert other.certificate_pem


@pytest.mark.parametrize("tls_redis", ["127.0.1.1"], indirect=True)
def test_a_certificate_for_another_address_fails_the_hostname_check(tls_redis):
    port, ca_file = tls_redis  # served on 127.0.0.1 with a certificate for 127.0.1.1
    client = _client(port, ssl=True, ssl_ca_certs=str(ca_file), ssl_cert_reqs="required", ssl_check_hostname=True)
    try:
        with pytest.raises(redis.exceptions.ConnectionError) as raised:
            client.ping()
    finally:
        client.close()
    assert isinstance(raised.value.__context__, ssl.SSLCertVerificationError), repr(raised.value.__context__)
    assert "127.0.0.1" in str(raised.value)


def test_plaintext_is_refused_on_the_tls_port(tls_redis):
    port, _ = tls_redis
    client = _client(port)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_redis_cli_with_tls_and_our_ca_gets_pong(tls_redis):
    port, ca_file = tls_redis
    if REDIS_CLI is None:
        pytest.skip("no redis-cli on this machine")
    help_text = subprocess.run([REDIS_CLI, "--help"], capture_output=True, text=True).stdout
    if "--tls" not in help_text:
        pytest.skip("this redis-cli was built without TLS (no --tls option)")
    answer = subprocess.run([REDIS_CLI, "--tls", "--cacert", str(ca_file), "-h", LOOPBACK, "-p", str(port), "ping"],
                            capture_output=True, text=True, timeout=15)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "PONG"
