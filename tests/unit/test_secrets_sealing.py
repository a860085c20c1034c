"""The installation key that seals the secrets kept in PostgreSQL (adapters/postgres/sealing.py)."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from adapters.postgres.sealing import InstallationKey, SecretsKeyError, read_key_file, write_key_file


@pytest.fixture
def key() -> InstallationKey:
    return InstallationKey(InstallationKey.new())


def test_a_sealed_value_opens_under_its_name_and_shows_nothing_of_itself(key):
    sealed = key.seal("password/app-1234", b"s3cret-password-value")
    assert b"s3cret" not in sealed
    assert key.open("password/app-1234", sealed) == b"s3cret-password-value"


def test_the_same_value_sealed_twice_differs(key):
    assert key.seal("n", b"v") != key.seal("n", b"v")  # a fresh nonce each time


def test_a_value_moved_under_another_name_does_not_open_and_the_error_shows_no_secret(key):
    sealed = key.seal("password/app-1234", b"s3cret-password-value")
    with pytest.raises(SecretsKeyError) as refused:
        key.open("password/app-9999", sealed)
    assert "password/app-9999" in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_wrong_key_is_named_as_the_problem(key):
    other = InstallationKey(InstallationKey.new(), source="the secrets key file /x/secrets.key")
    with pytest.raises(SecretsKeyError, match=r"does not open with the secrets key file /x/secrets.key .*installation's key"):
        other.open("token/api-token", key.seal("token/api-token", b"tok"))


@pytest.mark.parametrize("damage", [lambda b: b[:-1] + bytes([b[-1] ^ 1]), lambda b: b[:10], lambda b: b"\x02" + b[1:]])
def test_an_altered_value_is_refused(key, damage):
    with pytest.raises(SecretsKeyError):
        key.open("n", damage(key.seal("n", b"value")))


def test_a_key_file_is_written_0600_once_and_read_back(tmp_path):
    path = tmp_path / "keys" / "secrets.key"
    written = write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).open("n", written.seal("n", b"v")) == b"v"
    with pytest.raises(SecretsKeyError, match="exists already"):
        write_key_file(path)
    assert read_key_file(path).id == written.id


def test_a_key_file_open_to_others_is_narrowed(tmp_path):
    path = tmp_path / "secrets.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    path.chmod(0o644)
    read_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_key_file_without_a_key_is_refused_without_repeating_it(tmp_path, content):
    path = tmp_path / "secrets.key"
    path.write_text(content)
    with pytest.raises(SecretsKeyError, match="does not hold a key") as refused:
        read_key_file(path)
    assert not content or content not in str(refused.value)


def test_a_missing_key_file_is_named(tmp_path):
    with pytest.raises(SecretsKeyError, match=f"{tmp_path}/none.key does not exist"):
        read_key_file(tmp_path / "none.key")


def test_the_key_is_never_in_its_repr(key):
    assert repr(key) == f"<InstallationKey {key.id}>"


def test_the_secrets_key_command_writes_a_new_key_once(tmp_path, capsys):
    from adapters.cli.main import main

    path = tmp_path / "secrets.key"
    assert main(["secrets-key", "new", str(path)]) == 0
    key = read_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and key.id in capsys.readouterr().out
    assert main(["secrets-key", "new", str(path)]) == 1
    assert "exists already: it is left as it is" in capsys.readouterr().err
    assert read_key_file(path).id == key.id
