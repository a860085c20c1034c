"""Force TLS (reference, "Force TLS Connections"): the rules, the server's configuration and the
app's environment, in the language of the domain (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from uuid import uuid4

import pytest

from domain.addon import Addon
from domain.certificates import certificate_due
from domain.errors import AddonBusy, NoHostWithRoom, SettingUnchanged, TlsNotAvailable
from domain.placement import Host, Tenant, free_port
from domain.redis_config import app_environment, redis_conf
from tests.unit.given import a_running_addon, then, types

NODE = dict(address="127.0.1.1", port=30000, memory_mib=256, password="pw")


def test_forcing_tls_is_a_settings_change_whose_event_carries_the_new_settings():
    addon, operation = a_running_addon(tls_port=30001), uuid4()
    addon.request_setting_change("force-tls", True, operation)
    addon.mark_settings_changed(operation_id=operation)
    requested, changed = then(addon)
    assert types([requested, changed]) == [Addon.SettingsChangeRequested, Addon.SettingsChanged]
    assert changed.settings["force_tls"] is True and addon.settings["force_tls"] is True


def test_an_addon_serving_no_tls_port_cannot_force_tls_and_says_how_to_get_one():
    addon = a_running_addon(tls_port=None)
    with pytest.raises(TlsNotAvailable, match="serves no TLS port yet .* the engine gives it one within a few minutes"):
        addon.request_setting_change("force-tls", True, uuid4())
    assert not addon.is_busy and then(addon) == []


def test_tls_is_served_beside_plaintext_until_forced():
    conf = redis_conf(**NODE, tls_port=30001, settings={"force_tls": False})
    assert "port 30000" in conf.splitlines() and "tls-port 30001" in conf.splitlines()
    assert "tls-auth-clients no" in conf  # clients authenticate with the password
    forced = redis_conf(**NODE, tls_port=30001, settings={"force_tls": True})
    assert "port 0" in forced.splitlines() and "tls-port 30001" in forced.splitlines()


def test_a_build_without_tls_gets_no_tls_lines():
    conf = redis_conf(**NODE, settings={"force_tls": False})
    assert "tls-" not in conf and "port 30000" in conf.splitlines()


def test_the_app_gets_a_tls_url_beside_its_url_and_only_the_tls_url_once_forced():
    beside = app_environment(password="p@ss", address="127.0.1.1", port=30000, tls_port=30001, force_tls=False)
    assert beside["REDIS_URL"] == beside["SCALINGO_REDIS_URL"] == "redis://default:p%40ss@127.0.1.1:30000"
    assert beside["REDIS_TLS_URL"] == beside["SCALINGO_REDIS_TLS_URL"] == "rediss://default:p%40ss@127.0.1.1:30001"
    forced = app_environment(password="p@ss", address="127.0.1.1", port=30000, tls_port=30001, force_tls=True)
    assert {urlsplit(url).scheme for url in forced.values()} == {"rediss"}
    assert {urlsplit(url).port for url in forced.values()} == {30001}


def test_a_node_without_tls_publishes_only_the_plaintext_url():
    env = app_environment(password="pw", address="127.0.1.1", port=30000, tls_port=None, force_tls=False)
    assert set(env) == {"REDIS_URL", "SCALINGO_REDIS_URL"}


# -- the node's certificate, renewed before it expires -----------------------------------------

def test_a_certificate_is_due_within_thirty_days_of_its_expiry():
    expires = datetime(2029, 3, 3, tzinfo=timezone.utc)
    assert not certificate_due(expires, expires - timedelta(days=31))
    assert certificate_due(expires, expires - timedelta(days=30))
    assert certificate_due(expires, expires + timedelta(days=1))  # expired: all the more


def test_a_renewal_holds_the_addon_and_frees_it_whatever_the_outcome():
    addon, operation = a_running_addon(tls_port=30001), uuid4()
    addon.start_certificate_renewal(operation)
    with pytest.raises(AddonBusy):
        addon.request_setting_change("aof", True, uuid4())
    addon.mark_certificate_renewed(operation_id=operation, not_after="2031-06-01T00:00:00+00:00")
    failed = uuid4()
    addon.start_certificate_renewal(failed)
    addon.mark_certificate_renewal_failed(operation_id=failed, reason="node down")
    assert types(then(addon)) == [Addon.CertificateRenewalStarted, Addon.CertificateRenewed,
                                  Addon.CertificateRenewalStarted, Addon.CertificateRenewalFailed]
    assert not addon.is_busy


def test_a_node_without_tls_has_no_certificate_to_renew():
    with pytest.raises(TlsNotAvailable):
        a_running_addon(tls_port=None).start_certificate_renewal(uuid4())


# -- a node made before TLS was served here starts serving it -----------------------------------

def test_a_node_without_tls_gets_a_port_then_serves_tls_beside_plaintext():
    addon, operation = a_running_addon(tls_port=None), uuid4()
    addon.request_tls_port(30001, operation)
    assert addon.is_busy and addon.target["tls_port"] == 30001 and addon.tls_port is None
    addon.mark_tls_served(operation_id=operation)
    assert types(then(addon)) == [Addon.TlsPortRequested, Addon.TlsServed]
    assert addon.tls_port == 30001 and addon.target is None and not addon.is_busy


def test_a_failed_start_of_tls_leaves_the_node_as_it_was():
    addon, operation = a_running_addon(tls_port=None), uuid4()
    addon.request_tls_port(30001, operation)
    addon.mark_tls_serving_failed(operation_id=operation, reason="port taken")
    assert addon.tls_port is None and addon.target is None and not addon.is_busy


def test_a_node_serving_tls_gets_no_second_port():
    with pytest.raises(SettingUnchanged, match="serves TLS already, on port 30001"):
        a_running_addon(tls_port=30001).request_tls_port(30002, uuid4())


def test_the_lowest_port_nothing_holds_is_the_tls_port():
    host = Host("host-a", "127.0.1.1", 30000, 30003, 4096)
    tenants = [Tenant("host-a", 30000, 128), Tenant("host-a", 30002, 128, tls_port=30001)]
    assert free_port(host, tenants) == 30003
    with pytest.raises(NoHostWithRoom, match="host-a has no free port left in 30000-30003"):
        free_port(host, tenants, frozenset({("host-a", 30003)}))
