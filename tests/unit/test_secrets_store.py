"""The file secret store (adapters/secrets_store.py): a password written whole, and no draft of one
(it holds the password) left beside the store's files when writing or renaming it fails."""

from __future__ import annotations

import errno
import os

import pytest

from adapters import secrets_store
from adapters.secrets_store import FileSecretStore


def full_disk(*_, **__):
    raise OSError(errno.ENOSPC, "No space left on device")


def every_file(store: FileSecretStore) -> set[str]:
    return {str(p.relative_to(store.directory)) for p in store.directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_publication_that_fails_leaves_no_draft_and_the_password_as_it_was(tmp_path, monkeypatch, failing):
    store = FileSecretStore(tmp_path / "secrets")
    old, new = store.password_for("my-addon"), store.pending_for("my-addon")
    monkeypatch.setattr(secrets_store.os, failing, full_disk)

    with pytest.raises(OSError):
        store.publish_pending("my-addon")

    monkeypatch.undo()
    assert every_file(store) == {"my-addon", ".rotating/my-addon"}
    assert store.password_for("my-addon") == old and store.peek_pending("my-addon") == new
    store.publish_pending("my-addon")  # once there is room
    assert store.password_for("my-addon") == new and every_file(store) == {"my-addon", ".rotating/my-addon"}
    assert os.stat(store.directory / "my-addon").st_mode & 0o777 == 0o600


def test_a_new_password_that_cannot_be_written_leaves_no_draft(tmp_path, monkeypatch):
    store = FileSecretStore(tmp_path / "secrets")
    monkeypatch.setattr(secrets_store.os, "fsync", full_disk)
    with pytest.raises(OSError):
        store.password_for("my-addon")
    assert every_file(store) == set()


def test_a_secrets_directory_open_to_others_is_restricted_to_its_owner(tmp_path):
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    FileSecretStore(directory).password_for("my-addon")
    assert directory.stat().st_mode & 0o777 == 0o700
