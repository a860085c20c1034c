"""The App aggregate and how the engine restarts an app when its environment changes."""

from __future__ import annotations

import pytest

from domain.app import ENGINE_NAMESPACE, MANAGED_MARKS, App, loopback_url, refuse_database_matches, restart_method
from domain.errors import HookAtEngineApi, InvalidName, InvalidRestartMethod, LabelMatchesDatabase, ReservedLabel
from engine import nodes
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


@pytest.mark.parametrize("url", ["http://[::1", "https://[zz]/", "http://[127.0.0.1/restart"])
def test_a_hook_url_with_malformed_brackets_is_refused_naming_the_rule(url):
    with pytest.raises(InvalidRestartMethod, match="needs an http\\(s\\) URL") as refused:
        restart_method("hook", url=url)
    assert url in str(refused.value) and refused.value.status == 400


def test_a_hook_url_off_loopback_is_refused_naming_the_rule():
    with pytest.raises(InvalidRestartMethod, match="not on loopback"):
        loopback_url("http://192.168.1.10/restart")


@pytest.mark.parametrize("label", ["redis-addons.app=other-app", "redis-addons.addon=other-app-1234",
                                   "redis-addons.role=data", "Redis-Addons.App=x", "redis-addons=x",
                                   "redis-addons.env-digest=0123"])
def test_a_label_in_the_engines_namespace_is_refused_naming_the_rule(label):
    with pytest.raises(ReservedLabel, match="engine's namespace") as refused:
        restart_method("docker", label=label)
    assert (refused.value.rule, refused.value.status) == ("app-label-outside-engine-namespace", 400)


@pytest.mark.parametrize("label", ["redis-addonsx=1", "com.example.redis-addons.app=x", "app=redis-addons.app"])
def test_labels_that_only_mention_the_engine_are_the_apps_own(label):
    assert restart_method("docker", label=label) == {"kind": "docker", "label": label}


def test_the_engines_namespace_is_the_one_its_nodes_are_labelled_with():
    assert ENGINE_NAMESPACE == nodes.LABEL
    assert set(MANAGED_MARKS) <= set(node_labels_of_a_node())


def node_labels_of_a_node() -> dict:
    from types import SimpleNamespace
    addon = SimpleNamespace(name="my-app-1234", app="my-app")
    return nodes.node_labels(addon, {"host": "host-a", "port": 30000}, SimpleNamespace(id="op"))


def test_a_label_matching_a_database_container_is_refused_naming_the_nodes():
    matches = [("host-a", "web-1", {"com.example.app": "my-app"}),
               ("host-b", "redis-addons-other-1234-abcd", {"com.example.app": "my-app", "redis-addons.addon": "other-1234"}),
               ("host-a", "sentinel-1", {"com.example.app": "my-app", "redis-addons.role": "sentinel"})]
    with pytest.raises(LabelMatchesDatabase) as refused:
        refuse_database_matches("com.example.app=my-app", matches)
    message = str(refused.value)
    assert "redis-addons-other-1234-abcd on host-b" in message and "sentinel-1 on host-a" in message
    assert "web-1" not in message
    assert (refused.value.rule, refused.value.status) == ("restart-only-the-apps-own-containers", 409)
    refuse_database_matches("com.example.app=my-app", matches[:1])  # the app's own containers only: accepted
    refuse_database_matches("com.example.app=my-app", [])


@pytest.mark.parametrize(
    "url, api",
    [
        ("http://127.0.0.1:8470/restart", ("127.0.0.1", 8470)),
        ("http://localhost:8470/", ("127.0.0.1", 8470)),
        ("http://[::1]:8470/", ("localhost", 8470)),
        ("http://127.0.0.1:8470/", ("localhost", 8470)),
        ("http://127.0.2.1:8470/", ("0.0.0.0", 8470)),  # a wildcard bind answers on every loopback address
        ("http://localhost:8470/", ("::", 8470)),
        ("http://[::1]:8470/", ("[::1]", 8470)),
        ("http://127.0.0.1/", ("127.0.0.1", 80)),  # the scheme's default port
        ("https://127.0.0.1/", ("127.0.0.1", 443)),
    ],
)
def test_a_hook_at_the_engines_own_api_is_refused_naming_the_rule(url, api):
    with pytest.raises(HookAtEngineApi, match="engine's own API") as refused:
        restart_method("hook", url=url, engine_api=api)
    assert (refused.value.rule, refused.value.status) == ("hook-not-the-engine-api", 400)


@pytest.mark.parametrize(
    "url, api",
    [
        ("http://127.0.0.1:8471/restart", ("127.0.0.1", 8470)),  # another port
        ("http://127.0.0.2:8470/restart", ("127.0.0.1", 8470)),  # another address: the engine is not bound there
        ("http://[::1]:8470/", ("127.0.0.1", 8470)),
        ("http://127.0.0.1/", ("127.0.0.1", 8470)),
        ("https://127.0.0.1/", ("127.0.0.1", 80)),
    ],
)
def test_a_hook_elsewhere_on_loopback_is_accepted(url, api):
    assert restart_method("hook", url=url, engine_api=api) == {"kind": "hook", "url": url}


def test_a_hook_url_with_an_invalid_port_is_refused():
    with pytest.raises(InvalidRestartMethod, match="invalid port"):
        restart_method("hook", url="http://127.0.0.1:99999/", engine_api=("127.0.0.1", 8470))
