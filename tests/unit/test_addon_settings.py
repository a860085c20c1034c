"""Changing an addon's database settings: the names users type, the rules, the warnings."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.addon import Addon
from domain.settings import setting_key, settings_warnings
from domain.errors import AddonBusy, SettingUnchanged, UnknownSetting
from domain.redis_config import live_settings, redis_conf
from tests.unit.given import a_running_addon, then, types


@pytest.mark.parametrize("typed, key", [("rdb", "rdb"), ("AOF", "aof"), ("cache-mode", "cache_mode"),
                                        ("cache_mode", "cache_mode"), ("force-tls", "force_tls")])
def test_settings_are_named_as_in_the_reference(typed, key):
    assert setting_key(typed) == key


def test_an_unknown_setting_names_the_valid_ones():
    with pytest.raises(UnknownSetting, match="the settings are rdb, aof, cache-mode, force-tls"):
        setting_key("turbo")


def test_a_change_is_requested_then_applied_and_the_addon_is_busy_meanwhile():
    addon, operation = a_running_addon(), uuid4()
    addon.request_setting_change("aof", True, operation)
    with pytest.raises(AddonBusy):
        addon.request_setting_change("cache-mode", True, uuid4())
    addon.mark_settings_changed(operation_id=operation)
    assert types(then(addon)) == [Addon.SettingsChangeRequested, Addon.SettingsChanged]
    assert addon.settings["aof"] is True and not addon.is_busy


def test_a_failed_change_leaves_the_settings_as_they_were():
    addon, operation = a_running_addon(), uuid4()
    addon.request_setting_change("rdb", False, operation)
    addon.mark_settings_change_failed(operation_id=operation, reason="CONFIG SET refused")
    assert addon.settings["rdb"] is True and not addon.is_busy


def test_a_setting_already_so_is_refused():
    with pytest.raises(SettingUnchanged, match="RDB persistence is already on"):
        a_running_addon().request_setting_change("rdb", True, uuid4())


@pytest.mark.parametrize("rdb, aof, warned", [(True, False, False), (False, True, False), (True, True, False), (False, False, True)])
def test_only_no_persistence_at_all_is_warned_about(rdb, aof, warned):
    assert bool(settings_warnings({"rdb": rdb, "aof": aof})) == warned


def test_cache_mode_and_aof_reach_the_config_file_and_the_live_settings():
    settings = {"rdb": False, "aof": True, "cache_mode": True}
    conf = redis_conf(address="127.0.1.1", port=30000, memory_mib=256, password="pw", settings=settings)
    assert 'save ""' in conf and "appendonly yes" in conf and "appendfsync everysec" in conf
    assert "maxmemory-policy allkeys-lru" in conf and "maxmemory 256mb" in conf
    assert live_settings(settings) == {"save": "", "appendonly": "yes", "maxmemory-policy": "allkeys-lru"}
