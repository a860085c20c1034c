"""Where `export` and `restore-control-plane` take the passphrase from (adapters/cli/export.py): a file, the
environment, a terminal's prompt; never an argument, and each missing or unusable one said."""

from __future__ import annotations

import argparse

import pytest

from adapters.cli import export
from adapters.cli.client import CliError
from adapters.cli.main import parser


class Terminal:
    def isatty(self) -> bool:
        return True


class Pipe:
    def isatty(self) -> bool:
        return False


def args(passphrase_file=None) -> argparse.Namespace:
    return argparse.Namespace(passphrase_file=passphrase_file)


def test_the_file_wins_and_loses_only_its_final_newline(tmp_path):
    (tmp_path / "pp").write_text("  spaced passphrase  \n")
    assert export.passphrase_of(args(str(tmp_path / "pp")), {"REDIS_ADDONS_ARCHIVE_PASSPHRASE": "other"}, Pipe(),
                                confirm=True) == "  spaced passphrase  "


def test_an_empty_or_missing_file_is_said(tmp_path):
    (tmp_path / "pp").write_text("\n")
    with pytest.raises(CliError, match="is empty"):
        export.passphrase_of(args(str(tmp_path / "pp")), {}, Pipe(), confirm=False)
    with pytest.raises(CliError, match="cannot read the passphrase file .*missing"):
        export.passphrase_of(args(str(tmp_path / "missing")), {}, Pipe(), confirm=False)


def test_then_the_environment_then_a_terminal_asked_twice_for_an_export(monkeypatch):
    assert export.passphrase_of(args(), {"REDIS_ADDONS_ARCHIVE_PASSPHRASE": "from the env"}, Pipe(),
                                confirm=True) == "from the env"
    typed = iter(["first typing", "second typing"])
    monkeypatch.setattr(export.getpass, "getpass", lambda prompt: next(typed))
    with pytest.raises(CliError, match="the two passphrases differ: nothing was written"):
        export.passphrase_of(args(), {}, Terminal(), confirm=True)
    monkeypatch.setattr(export.getpass, "getpass", lambda prompt: "typed the same")
    assert export.passphrase_of(args(), {}, Terminal(), confirm=True) == "typed the same"


def test_no_source_at_all_is_refused_without_a_prompt():
    with pytest.raises(CliError, match="no passphrase: give --passphrase-file PATH or \\$REDIS_ADDONS_ARCHIVE_PASSPHRASE"):
        export.passphrase_of(args(), {}, Pipe(), confirm=False)


def test_the_command_line_takes_no_passphrase():
    with pytest.raises(SystemExit):
        parser().parse_args(["export", "--to", "a.archive", "--passphrase", "on the command line"])
    parsed = parser().parse_args(["restore-control-plane", "--from", "a.archive", "--passphrase-file", "pp"])
    assert (parsed.source, parsed.passphrase_file) == ("a.archive", "pp")
