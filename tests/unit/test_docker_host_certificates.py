"""A Docker host's certificates from the installation's CA (`redis-addons host-certificates`): the server's for
its IP, the engine's client certificate, their uses and validity, the keys' modes, and what the command prints."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.cli.main import main
from adapters.tls import CertificateAuthority
from adapters.tls.docker_host import HostFiles, issue_host_files
from engine.settings import load_hosts


def certificate(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError):
        return False


@pytest.fixture
def authority(tmp_path):
    return CertificateAuthority.load_or_create(tmp_path / "tls")


def test_the_host_gets_a_server_certificate_for_its_ip_and_the_engine_a_client_certificate(authority, tmp_path):
    files = issue_host_files(authority, "127.0.7.1", tmp_path / "host-g")
    ca = certificate(files.ca)
    assert files.ca.read_text() == authority.certificate_pem
    server, client = certificate(files.server_cert), certificate(files.client_cert)
    assert signed_by(server, ca) and signed_by(client, ca)

    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.7.1"]
    assert names.get_values_for_type(x509.DNSName) == []
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    # dockerd takes a client certificate only for clientAuth: a node's server certificate of the same CA is no key to it
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        client.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    for cert in (server, client):
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and not usage.key_cert_sign


def test_validity_starts_just_before_now_and_never_outlasts_the_ca(authority, tmp_path):
    now = datetime.now(timezone.utc)
    files = issue_host_files(authority, "127.0.7.1", tmp_path / "host-g", days=30)
    for path in (files.server_cert, files.client_cert):
        cert = certificate(path)
        assert now - timedelta(minutes=6) < cert.not_valid_before_utc <= now
        assert timedelta(days=29, hours=23) < cert.not_valid_after_utc - now <= timedelta(days=30)
    longest = issue_host_files(authority, "127.0.7.1", tmp_path / "long", days=100_000)
    assert certificate(longest.server_cert).not_valid_after_utc == certificate(longest.ca).not_valid_after_utc


def test_the_keys_are_their_certificates_and_readable_by_their_owner_only(authority, tmp_path):
    files = issue_host_files(authority, "127.0.7.1", tmp_path / "host-g")
    for cert_path, key_path in ((files.server_cert, files.server_key), (files.client_cert, files.client_key)):
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert certificate(cert_path).public_key().public_numbers() == key.public_key().public_numbers()
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    assert certificate(files.server_cert).serial_number != certificate(files.client_cert).serial_number


def test_files_already_there_are_never_replaced_and_a_bad_address_writes_nothing(authority, tmp_path):
    files = issue_host_files(authority, "127.0.7.1", tmp_path / "host-g")
    before = {f: f.read_bytes() for f in files}
    with pytest.raises(FileExistsError, match="already there"):
        issue_host_files(authority, "127.0.7.1", tmp_path / "host-g")
    assert {f: f.read_bytes() for f in files} == before
    with pytest.raises(ValueError, match="not an IP address"):
        issue_host_files(authority, "host-g.example", tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_the_command_prints_the_dockerd_flags_and_a_hosts_entry_the_engine_loads(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(home))
    monkeypatch.delenv("REDIS_ADDONS_HOSTS", raising=False)
    out = home / "docker-tls" / "host-x"
    assert main(["host-certificates", "host-x", "--address", "127.0.9.1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    files = HostFiles.under(out)
    assert (f"dockerd -H tcp://127.0.9.1:2376 --tlsverify --tlscacert={files.ca} --tlscert={files.server_cert} "
            f"--tlskey={files.server_key}") in printed
    assert "PRIVATE KEY" not in printed and files.client_key.read_text().splitlines()[1] not in printed
    entry = json.loads(next(line for line in printed.splitlines() if line.strip().startswith("{")))
    assert entry["tls"] == {"ca": "docker-tls/host-x/ca.pem", "cert": "docker-tls/host-x/client-cert.pem",
                            "key": "docker-tls/host-x/client-key.pem"}  # relative to the hosts file's directory
    (home / "hosts.json").write_text(json.dumps({"hosts": [{**entry, "ports": [28000, 28010], "memory_mib": 512}]}))
    (host,) = load_hosts(home / "hosts.json")
    assert (host.docker_url, host.tls.key) == ("tcp://127.0.9.1:2376", files.client_key)
    assert certificate(files.ca).subject.rfc4514_string() == CertificateAuthority.load_or_create(home / "tls").subject


@pytest.mark.parametrize("args, said", [
    (["--address", "localhost"], "--address 'localhost' is not an IP address"),
    (["--address", "127.0.9.1", "--port", "0"], "--port 0: give a TCP port"),
])
def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path, monkeypatch, capsys, args, said):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "home"))
    assert main(["host-certificates", "host-x", *args, "--out", str(tmp_path / "out")]) == 1
    assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "home").exists()
