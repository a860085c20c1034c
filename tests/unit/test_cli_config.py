"""Where the CLI finds its server: the environment, a data directory, the user's configuration, ./var."""

from __future__ import annotations

import pytest

from adapters.cli import config
from adapters.cli.client import CliError, api_token, api_url


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A user with a configuration directory of their own, working in a directory with no var/."""
    monkeypatch.chdir(tmp_path)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}


def test_what_is_saved_is_loaded_back_owner_only(user, tmp_path):
    path = config.save("http://127.0.0.1:9000/", "s3cret", user)
    assert path == tmp_path / "config" / "redis-addons" / "config.json"
    assert config.load(user) == {"api": "http://127.0.0.1:9000", "token": "s3cret", "recorded_by": "login"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary file left


def test_without_xdg_config_home_it_is_under_home_dot_config(tmp_path):
    assert config.config_file({"HOME": str(tmp_path)}) == tmp_path / ".config" / "redis-addons" / "config.json"


def test_the_recorded_server_is_used_from_any_directory(user):
    config.save("http://127.0.0.1:9000", "recorded-token", user)
    assert api_url(user) == "http://127.0.0.1:9000"
    assert api_token(user) == "recorded-token"


def test_the_environment_variables_win_over_the_recorded_server(user):
    config.save("http://127.0.0.1:9000", "recorded-token", user)
    env = dict(user, REDIS_ADDONS_API="http://127.0.0.1:9100/", REDIS_ADDONS_TOKEN="from-env")
    assert (api_url(env), api_token(env)) == ("http://127.0.0.1:9100", "from-env")


def test_a_data_directory_named_wins_over_the_recorded_server(user, tmp_path):
    config.save("http://127.0.0.1:9000", "recorded-token", user)
    data = tmp_path / "data"
    data.mkdir()
    (data / "api-url").write_text("http://127.0.0.1:9200\n")
    (data / "api-token").write_text("data-token\n")
    env = dict(user, REDIS_ADDONS_HOME=str(data))
    assert (api_url(env), api_token(env)) == ("http://127.0.0.1:9200", "data-token")


def test_without_a_recorded_server_the_current_directory_var_is_used(user, tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api-url").write_text("http://127.0.0.1:9300\n")
    (tmp_path / "var" / "api-token").write_text("var-token\n")
    assert (api_url(user), api_token(user)) == ("http://127.0.0.1:9300", "var-token")


def test_no_token_anywhere_names_every_way_to_give_one(user):
    with pytest.raises(CliError) as error:
        api_token(user)
    message = str(error.value)
    assert "REDIS_ADDONS_TOKEN" in message and "redis-addons login" in message and "config.json" in message


def test_a_damaged_configuration_is_named(user):
    path = config.config_file(user)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(CliError, match=r"config\.json is unreadable .*login"):
        api_url(user)


def test_logout_forgets_the_recorded_server(user):
    config.save("http://127.0.0.1:9000", "t", user)
    assert config.forget(user) is True
    assert config.load(user) == {} and config.forget(user) is False


def test_the_recorded_token_is_never_sent_to_another_server(user):
    config.save("http://127.0.0.1:9000", "recorded-token", user)
    assert api_token(dict(user, REDIS_ADDONS_API="http://127.0.0.1:9000/")) == "recorded-token"
    with pytest.raises(CliError, match="no API token"):
        api_token(dict(user, REDIS_ADDONS_API="https://other.example"))


def test_a_server_starting_does_not_replace_the_server_the_user_logged_in_to(user):
    assert config.serve_may_record(user)  # nothing recorded yet
    config.save("http://127.0.0.1:9000", "t", user, recorded_by="serve")
    assert config.serve_may_record(user)  # a server's own record: the next server replaces it
    config.save("http://127.0.0.1:9100", "t", user)  # login
    assert not config.serve_may_record(user)


def test_login_refuses_a_malformed_url_without_a_traceback(user, capsys):
    from adapters.cli.main import main

    assert main(["login", "--api", "http://[::1"]) == 1
    assert "is not an http(s) URL" in capsys.readouterr().err
