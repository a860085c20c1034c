"""The redis.conf of a node, its URL and its container's memory (the reference, DESIGN §5)."""

from __future__ import annotations

import hashlib

import pytest

from domain.redis_config import container_memory_bytes, password_hash, redis_conf, redis_url

PASSWORD = "s3cret-" + "x" * 57


def conf(memory_mib=1024, password=PASSWORD, **settings) -> list[str]:
    return redis_conf(address="127.0.1.1", port=30000, memory_mib=memory_mib, password=password,
                      settings=settings).splitlines()


@pytest.mark.parametrize(
    "rule",
    [
        "bind 127.0.1.1",
        "port 30000",
        "databases 5",  # "Each Redis® instance can use 5 databases"
        "timeout 150",  # "Idle Connections Timeout"
        "save 900 1",  # every 15 minutes if at least 1 operation
        "save 300 10",  # every 5 minutes if at least 10 operations
        "save 60 10000",  # every minute if at least 10,000 operations
        "appendonly no",
        "maxmemory 1024mb",  # the plan's memory
        "maxmemory-policy noeviction",
    ],
)
def test_each_rule_of_the_reference_by_default(rule):
    assert rule in conf()


def test_a_setting_appears_once():
    keys = [line.split()[0] for line in conf() if line.split()[0] not in ("save", "user")]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("memory", [128, 256, 8192])
def test_maxmemory_is_the_plan_memory_in_mebibytes(memory):
    assert f"maxmemory {memory}mb" in conf(memory_mib=memory)


@pytest.mark.parametrize(
    "settings, present, absent",
    [
        ({"cache_mode": True}, ["maxmemory-policy allkeys-lru"], ["maxmemory-policy noeviction"]),
        ({"cache_mode": False}, ["maxmemory-policy noeviction"], ["maxmemory-policy allkeys-lru"]),
        ({"rdb": False}, ['save ""'], ["save 900 1", "save 300 10", "save 60 10000"]),
        ({"rdb": True}, ["save 900 1", "save 300 10", "save 60 10000"], ['save ""']),
        ({"aof": True}, ["appendonly yes"], ["appendonly no"]),
        ({"aof": False}, ["appendonly no"], ["appendonly yes"]),
        ({"rdb": False, "aof": True}, ['save ""', "appendonly yes"], ["save 900 1", "appendonly no"]),
        ({"cache_mode": True, "rdb": False}, ["maxmemory-policy allkeys-lru", 'save ""'], ["save 60 10000"]),
    ],
)
def test_settings_shape_the_configuration(settings, present, absent):
    lines = conf(**settings)
    for line in present:
        assert line in lines
    for line in absent:
        assert line not in lines


@pytest.mark.parametrize("password", [PASSWORD, "Zq9", "pässwörd with spaces", "a#b~c&d+@all"])
def test_a_single_default_user_holds_the_sha256_of_the_password_never_the_password(password):
    lines = conf(password=password)
    text = "\n".join(lines)
    assert password not in text
    digest = hashlib.sha256(password.encode()).hexdigest()
    assert password_hash(password) == digest
    users = [line for line in lines if line.startswith("user ")]
    assert users == [f"user default on resetpass #{digest} ~* &* +@all"]


@pytest.mark.parametrize(
    "password, tls, url",
    [
        ("pw", False, "redis://default:pw@127.0.1.1:30000"),
        ("pw", True, "rediss://default:pw@127.0.1.1:30000"),
        ("a/b c", False, "redis://default:a%2Fb%20c@127.0.1.1:30000"),
        ("u:p@h", False, "redis://default:u%3Ap%40h@127.0.1.1:30000"),
        ("100%?#", False, "redis://default:100%25%3F%23@127.0.1.1:30000"),
        ("é", False, "redis://default:%C3%A9@127.0.1.1:30000"),
    ],
)
def test_the_url_names_the_default_user_and_quotes_the_password(password, tls, url):
    assert redis_url(password=password, address="127.0.1.1", port=30000, tls=tls) == url


@pytest.mark.parametrize("memory, extra", [(128, 64), (256, 64), (512, 128), (1024, 256), (8192, 2048)])
def test_the_container_has_room_above_maxmemory(memory, extra):
    assert container_memory_bytes(memory) == (memory + extra) * 1024 * 1024


def test_save_rules_are_the_reference_rules_with_rdb_and_none_without():
    from domain.redis_config import save_rules

    assert save_rules({"rdb": True}) == "900 1 300 10 60 10000"
    assert save_rules({"rdb": False}) == ""
