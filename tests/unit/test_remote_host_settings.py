"""hosts.json's Docker hosts over TCP: the TLS files a tcp:// host must name, checked when the hosts are loaded."""

from __future__ import annotations

import json

import pytest

from engine.host_tls import HostTLS, https_url
from engine.settings import SettingsError, load_hosts

UNIX = {"name": "host-a", "docker_url": "unix:///run/docker.sock", "bind": "127.0.1.1", "ports": [30000, 30999],
        "memory_mib": 1024}
TLS = {"ca": "tls/ca.pem", "cert": "tls/client-cert.pem", "key": "tls/client-key.pem"}


def tcp_host(**changes) -> dict:
    return {"name": "host-g", "docker_url": "tcp://127.0.7.1:2376", "bind": "127.0.7.1", "ports": [28000, 28999],
            "memory_mib": 1024, "tls": TLS, **changes}


@pytest.fixture
def hosts_file(tmp_path):
    """A hosts file in a directory of its own, with the TLS files its tcp:// host names (the key 0600)."""
    (tmp_path / "tls").mkdir()
    for name, mode in (("ca.pem", 0o644), ("client-cert.pem", 0o644), ("client-key.pem", 0o600)):
        path = tmp_path / "tls" / name
        path.write_text("PEM\n")
        path.chmod(mode)

    def write(*hosts: dict):
        path = tmp_path / "hosts.json"
        path.write_text(json.dumps({"hosts": list(hosts)}))
        return path

    return write


def test_a_tcp_host_names_its_tls_files_relative_to_the_hosts_file(hosts_file, tmp_path):
    unix, tcp = load_hosts(hosts_file(UNIX, tcp_host()))
    assert unix.tls is None
    assert tcp.tls == HostTLS(tmp_path / "tls/ca.pem", tmp_path / "tls/client-cert.pem", tmp_path / "tls/client-key.pem")
    assert https_url(tcp.docker_url) == "https://127.0.7.1:2376"


def test_absolute_paths_are_taken_as_they_are(hosts_file, tmp_path):
    absolute = {k: str(tmp_path / v) for k, v in TLS.items()}
    assert load_hosts(hosts_file(tcp_host(tls=absolute)))[0].tls.key == tmp_path / "tls/client-key.pem"


@pytest.mark.parametrize("tls, said", [
    (None, 'a tcp:// Docker host needs "tls": {{"ca": PATH, "cert": PATH, "key": PATH}}'),
    ({"ca": "tls/ca.pem", "cert": "tls/client-cert.pem"}, "got keys ['ca', 'cert']"),
    ({**TLS, "key": 3}, 'needs "tls"'),
    ("tls/", "got 'str'"),
    ({**TLS, "ca": "tls/nothing.pem"}, "tls ca file {dir}/tls/nothing.pem does not exist"),
    ({**TLS, "cert": "tls"}, "tls cert {dir}/tls is a directory"),
])
def test_a_tcp_host_without_usable_tls_files_is_refused(hosts_file, tmp_path, tls, said):
    with pytest.raises(SettingsError) as refused:
        load_hosts(hosts_file(UNIX, {k: v for k, v in tcp_host(tls=tls).items() if v is not None}))
    assert "host-g" in str(refused.value) and said.format(dir=tmp_path) in str(refused.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_private_key_others_may_read_is_refused(hosts_file, tmp_path, mode):
    (tmp_path / "tls/client-key.pem").chmod(mode)
    with pytest.raises(SettingsError, match=rf"the private key {tmp_path}/tls/client-key.pem is open to others .*chmod 600"):
        load_hosts(hosts_file(tcp_host()))


def test_plain_http_is_refused_and_tls_is_for_tcp_hosts_only(hosts_file):
    with pytest.raises(SettingsError, match="plain HTTP"):
        load_hosts(hosts_file(tcp_host(docker_url="http://127.0.7.1:2375")))
    with pytest.raises(SettingsError, match=r'"tls" is for a tcp:// docker_url, not unix:///run/docker.sock'):
        load_hosts(hosts_file({**UNIX, "tls": TLS}))


def test_the_refusal_never_shows_what_a_file_holds(hosts_file, tmp_path):
    (tmp_path / "tls/client-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n")
    (tmp_path / "tls/client-key.pem").chmod(0o644)
    with pytest.raises(SettingsError) as refused:
        load_hosts(hosts_file(tcp_host()))
    assert "SECRETBYTES" not in str(refused.value)
