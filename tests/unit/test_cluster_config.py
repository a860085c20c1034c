"""The configuration of a Business cluster's nodes, as the Sentinels and HAProxy will read it."""

from __future__ import annotations

from domain.cluster_config import (DOWN_AFTER_MS, MASTER_NAME, QUORUM, Address, haproxy_cfg, named_primary,
                                   replication_lines, resp, sentinel_conf)

PRIMARY, REPLICA = Address("127.0.1.1", 30000), Address("127.0.2.1", 31000)
SENTINELS = [Address("127.0.1.1", 30002), Address("127.0.2.1", 31002), Address("127.0.3.1", 32002)]


def test_a_replica_follows_the_primary_and_announces_the_address_clients_reach():
    lines = replication_lines(node=REPLICA, primary=PRIMARY, password="pw", min_replicas=1)
    assert "replicaof 127.0.1.1 30000" in lines
    assert {"replica-announce-ip 127.0.2.1", "replica-announce-port 31000", "masterauth \"pw\"",
            "min-replicas-to-write 1"} <= set(lines)


def test_a_primary_follows_nobody_and_can_be_told_to_need_no_replica():
    lines = replication_lines(node=PRIMARY, primary=None, password="pw", min_replicas=0)
    assert not any(line.startswith("replicaof") for line in lines) and "min-replicas-to-write 0" in lines


def test_a_sentinel_watches_the_primary_with_a_quorum_of_two_and_fast_timings():
    conf = sentinel_conf(sentinel=SENTINELS[2], primary=PRIMARY, password="pw", sentinel_password="spw").splitlines()
    assert f"sentinel monitor {MASTER_NAME} 127.0.1.1 30000 {QUORUM}" in conf and QUORUM == 2
    assert f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}" in conf and DOWN_AFTER_MS < 30000
    assert {"sentinel announce-ip 127.0.3.1", "sentinel announce-port 32002", f"sentinel auth-pass {MASTER_NAME} \"pw\"",
            "requirepass \"spw\"", "sentinel sentinel-pass \"spw\""} <= set(conf)


def test_commands_are_sent_as_resp_with_spaces_escaped_for_haproxy():
    assert resp("PING") == "*1\\r\\n$4\\r\\nPING\\r\\n"
    assert resp("AUTH", "default", "a b") == "*3\\r\\n$4\\r\\nAUTH\\r\\n$7\\r\\ndefault\\r\\n$3\\r\\na\\ b\\r\\n"


def test_a_sentinels_answer_naming_a_node_includes_its_port():
    assert named_primary(PRIMARY) == "$9\\r\\n127.0.1.1\\r\\n$5\\r\\n30000"


def test_the_entrypoint_routes_only_to_the_node_a_quorum_of_sentinels_names():
    cfg = haproxy_cfg(entry=Address("127.0.1.1", 30004), data_nodes={"a": PRIMARY, "b": REPLICA}, sentinels=SENTINELS,
                      password="pw", sentinel_password="spw")
    assert "    bind 127.0.1.1:30004" in cfg
    assert "    use_backend data_a if { nbsrv(named_a) ge 2 }" in cfg and "    default_backend no_primary" in cfg
    assert cfg.count("on-marked-down shutdown-sessions") == 2
    assert cfg.count("tcp-check expect string role:master") == 2
    named_a = cfg.split("backend named_a\n")[1].split("backend ")[0]
    assert named_primary(PRIMARY) in named_a and named_a.count("server sentinel") == 3
    # A Sentinel does not know QUIT (redis-ha #217: a check expecting its +OK always failed): its answer
    # is judged once whole (min-recv) instead; a data node's check ends with QUIT, so it is judged at once.
    assert "QUIT" not in named_a and "min-recv 30 string" in named_a  # *2, $9 127.0.1.1, $5 30000: 30 bytes
    assert cfg.count("QUIT") == 2
