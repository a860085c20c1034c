"""The App aggregate and how the engine restarts an app when its environment changes."""

from __future__ import annotations

import pytest

from domain.app import App, loopback_url, restart_method
from domain.errors import InvalidName, InvalidRestartMethod
from tests.unit.given import replayed, then, types


def test_an_app_is_registered_with_its_restart_method_under_an_id_of_its_name():
    app = App(name="my-app", restart={"kind": "none"})
    [registered] = events = then(app)
    assert types(events) == [App.Registered]
    assert (registered.name, registered.restart) == ("my-app", {"kind": "none"})
    assert app.id == App.id_for("my-app") and app.id.version == 5 and app.id != App.id_for("my-app2")


def test_an_app_with_an_invalid_name_is_not_registered():
    with pytest.raises(InvalidName):
        App(name="My_App", restart={"kind": "none"})


def test_the_restart_method_of_an_app_can_change():
    app = App(name="my-app", restart={"kind": "none"})
    history = then(app)
    method = restart_method("docker", label="com.example.app=my-app")
    app.change_restart(method)
    [changed] = events = then(app)
    assert types(events) == [App.RestartMethodChanged] and changed.restart == method
    assert app.restart == method
    assert replayed(history + events, App).restart == method


@pytest.mark.parametrize(
    "kind, label, url, method",
    [
        ("docker", "com.example.app=my-app", None, {"kind": "docker", "label": "com.example.app=my-app"}),
        ("docker", "app=web", None, {"kind": "docker", "label": "app=web"}),
        ("hook", None, "http://127.0.0.1:8080/restart", {"kind": "hook", "url": "http://127.0.0.1:8080/restart"}),
        ("hook", None, "https://localhost/restart", {"kind": "hook", "url": "https://localhost/restart"}),
        ("hook", None, "http://127.0.2.1/restart", {"kind": "hook", "url": "http://127.0.2.1/restart"}),
        ("hook", None, "http://[::1]:9000/", {"kind": "hook", "url": "http://[::1]:9000/"}),
        ("none", None, None, {"kind": "none"}),
    ],
)
def test_valid_restart_methods(kind, label, url, method):
    assert restart_method(kind, label=label, url=url) == method


@pytest.mark.parametrize(
    "kind, label, url",
    [
        ("docker", None, None),
        ("docker", "app", None),  # no value
        ("docker", "=web", None),  # no key
        ("docker", "app=", None),
        ("docker", "app=my web", None),
        ("docker", "app=web\n", None),  # a trailing newline is not part of a label
        ("hook", None, None),
        ("hook", None, "ftp://127.0.0.1/restart"),
        ("hook", None, "127.0.0.1:8080/restart"),
        ("hook", None, "http://10.0.0.1/restart"),  # the engine never sends traffic off this machine
        ("hook", None, "http://example.com/restart"),
        ("hook", None, "http://localhost.example.com/restart"),
        ("hook", None, "http://127.0.0.1.example.com/restart"),
        ("ssh", None, None),
    ],
)
def test_invalid_restart_methods_are_refused(kind, label, url):
    with pytest.raises(InvalidRestartMethod) as refused:
        restart_method(kind, label=label, url=url)
    assert (refused.value.rule, refused.value.status) == ("restart-method", 400)


def test_a_hook_url_off_loopback_is_refused_naming_the_rule():
    with pytest.raises(InvalidRestartMethod, match="not on loopback"):
        loopback_url("http://192.168.1.10/restart")
