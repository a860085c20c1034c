"""The `hosts` verbs of the CLI (adapters/cli/hosts.py) over a recorded API: what they ask, what they print,
and bad input refused before any request."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from adapters.cli.client import CliError
from adapters.cli.hosts import hosts

HOST = {"name": "host-z", "state": "active", "docker_url": "unix:///run/z.sock", "address": "127.0.9.1",
        "ports": [40000, 40999], "memory_mib": 16384, "used_memory_mib": 256, "used_ports": [40000, 40001],
        "nodes": [{"addon": "my-app-1234", "role": "data", "container": "redis-addons-my-app-1234-ab", "port": 40000,
                   "state": "running"}]}


class Recorded:
    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def get(self, path, **query):
        self.asked.append(("GET", path, None))
        return self.answer

    def post(self, path, body=None, **query):
        self.asked.append(("POST", path, body))
        return self.answer

    def delete(self, path, **query):
        self.asked.append(("DELETE", path, None))
        return self.answer


def args(action="list", name=None, **options):
    given = dict(url=None, bind=None, ports=None, memory_mib=None, tls_ca=None, tls_cert=None, tls_key=None)
    return SimpleNamespace(action=action, name=name, **{**given, **options})


def test_the_listing_shows_capacity_used_memory_ports_and_nodes(capsys):
    hosts(Recorded({"hosts": [HOST]}), args())
    out = capsys.readouterr().out
    assert "host-z" in out and "16384" in out and "256" in out and "40000-40999" in out
    assert "my-app-1234 data redis-addons-my-app-1234-ab :40000 (running)" in out


def test_add_sends_the_host_as_hosts_json_describes_it():
    api = Recorded({"host": HOST})
    hosts(api, args("add", "host-z", url="unix:///run/z.sock", bind="127.0.9.1", ports="40000-40999",
                    memory_mib=16384))
    assert api.asked == [("POST", "/v1/hosts", {"name": "host-z", "docker_url": "unix:///run/z.sock",
                                                "bind": "127.0.9.1", "ports": [40000, 40999], "memory_mib": 16384})]


@pytest.mark.parametrize("given, message", [
    (dict(url="unix:///z", bind="127.0.9.1", ports="40000", memory_mib=1), "FIRST-LAST"),
    (dict(url="unix:///z", ports="1-2"), "--bind, --memory-mib"),
])
def test_bad_input_is_refused_before_any_request(given, message):
    api = Recorded({})
    with pytest.raises(CliError, match=message):
        hosts(api, args("add", "host-z", **given))
    assert api.asked == []


def test_drain_and_remove_need_a_name_and_say_what_happens(capsys):
    with pytest.raises(CliError, match="needs the host's NAME"):
        hosts(Recorded({}), args("drain"))
    api = Recorded({"host": HOST})
    hosts(api, args("drain", "host-z"))
    assert api.asked == [("POST", "/v1/hosts/host-z/drain", None)]
    assert "takes no new node" in capsys.readouterr().out
    hosts(api, args("remove", "host-z"))
    assert api.asked[-1] == ("DELETE", "/v1/hosts/host-z", None)
