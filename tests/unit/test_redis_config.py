"""The Redis configuration of a node, per the reference and DESIGN §5."""

from __future__ import annotations

import hashlib

from domain.redis_config import container_memory_bytes, redis_conf, redis_url

PASSWORD = "s3cret-" + "x" * 60


def conf(**settings) -> list[str]:
    base = {"rdb": True, "aof": False, "cache_mode": False}
    base.update(settings)
    return redis_conf(address="127.0.1.1", port=30000, memory_mib=1024, password=PASSWORD, settings=base).splitlines()


def test_the_reference_configuration():
    lines = conf()
    for expected in ("bind 127.0.1.1", "port 30000", "databases 5", "timeout 150", "save 900 1", "save 300 10",
                     "save 60 10000", "appendonly no", "maxmemory 1024mb", "maxmemory-policy noeviction"):
        assert expected in lines


def test_a_single_default_user_holds_the_hash_of_the_password_never_the_password():
    text = "\n".join(conf())
    assert PASSWORD not in text
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert f"user default on resetpass #{digest} ~* &* +@all" in text
    assert sum(line.startswith("user ") for line in conf()) == 1


def test_cache_mode_evicts_the_least_recently_used_keys():
    assert "maxmemory-policy allkeys-lru" in conf(cache_mode=True)


def test_rdb_off_and_aof_on():
    lines = conf(rdb=False, aof=True)
    assert 'save ""' in lines and "appendonly yes" in lines and "save 900 1" not in lines


def test_the_url_quotes_the_password_and_names_the_default_user():
    assert redis_url(password="a/b c", address="127.0.1.1", port=30000) == "redis://default:a%2Fb%20c@127.0.1.1:30000"
    assert redis_url(password="p", address="127.0.1.1", port=1, tls=True).startswith("rediss://")


def test_the_container_has_room_above_maxmemory():
    assert container_memory_bytes(128) == (128 + 64) * 1024 * 1024
    assert container_memory_bytes(4096) == (4096 + 1024) * 1024 * 1024
