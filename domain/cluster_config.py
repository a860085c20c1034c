"""The configuration of a Business cluster's nodes (reference, "Scalingo for Redis® Cluster Setup"):
two data nodes in replication, three Sentinels that elect a new primary when the current one
fails, and two HAProxy that send clients only to the primary the Sentinels name.

Timings (DESIGN §11): Sentinel's defaults (down-after 30 s, failover-timeout 180 s) leave an app
without writes for half a minute; a failover takes about down-after + 1–2 s, so a primary is
declared down after 1 s of silence (as the spotahome operator does), within the 3 s write-gap
target, and a failover that stalls is tried again after 3 s. HAProxy checks every node each half
second, and asks every Sentinel which node it names every fifth of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.redis_config import TLS_FILES, tls_lines

MASTER_NAME = "primary"  # what the Sentinels call the cluster's primary
QUORUM = 2  # of 3 Sentinels: losing any one host leaves a majority
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
# HAProxy checks a server that is up every 500 ms; one failing, or one down (a replica's own backend,
# the Sentinels not naming a node), every 200 ms: a change of primary is seen within a fifth of a
# second without checking the steady state as often.
CHECK_TIMING = "inter 500 fastinter 200 downinter 200"
# Which node the Sentinels name is asked every 200 ms, up or down: a failover changes it, and routing
# waits for it (a Sentinel answers it from memory).
NAMED_TIMING = "inter 200 fastinter 200 downinter 200"
# A primary cut off from its replica for longer than this stops acknowledging writes (they could be
# lost in a failover); the engine lowers the requirement when it knows the replica is gone.
MIN_REPLICAS_MAX_LAG_S = 2
# A primary asking for more replicas than a cluster has refuses every write (NOREPLICAS): how an operation
# stops writes while reads go on (engine/cluster_upgrade_stopped.py); the failover follower leaves it so.
WRITES_STOPPED = 1000
SENTINEL_DIR = "/etc/sentinel"
HAPROXY_DIR = "/etc/haproxy"
TLS_SUBDIR = "tls"  # where a Sentinel's certificate and key, and HAProxy's CA, go in their configuration directory
HAPROXY_CA = f"{HAPROXY_DIR}/{TLS_SUBDIR}/{TLS_FILES['ca']}"
# How HAProxy reaches a node that serves TLS only: the node's certificate verified with the installation's CA.
VERIFIED = f"ssl verify required ca-file {HAPROXY_CA}"


@dataclass(frozen=True)
class Address:
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def replication_lines(*, node: Address, primary: Address | None, password: str, min_replicas: int,
                      promotable: bool = True) -> list[str]:
    """What a data node adds to its redis.conf in a cluster. A replica of `primary`, or the primary
    itself when None. `masterauth` holds the password itself (Redis offers no hashed form for it):
    the file is the server's only, on its configuration volume. A replica that is not `promotable`
    (one that joins or comes back, its data not in sync yet) is never chosen by the Sentinels
    (`replica-priority 0`) until the engine sees it in sync and raises it."""
    lines = [
        f"replica-announce-ip {node.address}",  # host networking: say the address clients reach
        f"replica-announce-port {node.port}",
        "masteruser default",
        f"masterauth {quoted(password)}",
        "replica-read-only yes",
        "repl-diskless-sync-delay 0",  # one replica: no reason to wait 5 s for others before a full sync
        f"min-replicas-to-write {min_replicas}",
        f"min-replicas-max-lag {MIN_REPLICAS_MAX_LAG_S}",
    ]
    if primary is not None:
        lines.append(f"replicaof {primary.address} {primary.port}")
    if not promotable:
        lines.append("replica-priority 0")
    return lines


def quoted(value: str) -> str:
    """A value as Redis's configuration files read it whatever it holds (spaces, quotes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sentinel_conf(*, sentinel: Address, primary: Address, password: str, sentinel_password: str,
                  tls: bool = False) -> str:
    """A Sentinel watching the cluster's primary. Sentinel rewrites this file as it learns (the
    replicas, the other Sentinels, a new primary), so it lives on a volume it can write. With `tls`,
    its one port serves TLS only, and it speaks TLS to the nodes and the other Sentinels."""
    lines = [
        f"bind {sentinel.address}",
        f"port {0 if tls else sentinel.port}",
        *(tls_lines(sentinel.port, f"{SENTINEL_DIR}/{TLS_SUBDIR}", replication=True) if tls else []),
        "daemonize no",
        'logfile ""',
        f"dir {SENTINEL_DIR}",
        f"sentinel announce-ip {sentinel.address}",
        f"sentinel announce-port {sentinel.port}",
        "sentinel resolve-hostnames no",
        f"requirepass {quoted(sentinel_password)}",  # clients (HAProxy, the engine) and the other Sentinels
        f"sentinel sentinel-pass {quoted(sentinel_password)}",
        f"sentinel monitor {MASTER_NAME} {primary.address} {primary.port} {QUORUM}",
        f"sentinel auth-user {MASTER_NAME} default",
        f"sentinel auth-pass {MASTER_NAME} {quoted(password)}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
    ]
    return "\n".join(lines) + "\n"


def frontend(name: str, bind: Address, backends: str, data_nodes: dict[str, Address]) -> list[str]:
    lines = [f"frontend {name}", f"    bind {bind}"]
    lines += [f"    use_backend {backends}_{n} if {{ nbsrv(named_{n}) ge {QUORUM} }}" for n in data_nodes]
    return lines + ["    default_backend no_primary"]


def resp(*words: str) -> str:
    """A command as HAProxy's tcp-check sends it (RESP array, escaped for haproxy.cfg)."""
    parts = [f"*{len(words)}"] + [item for word in words for item in (f"${len(word)}", word)]
    return "\\r\\n".join(p.replace(" ", "\\ ") for p in parts) + "\\r\\n"


def named_primary(node: Address) -> str:
    """What a Sentinel answers to `SENTINEL get-master-addr-by-name` when it names `node`, port included
    (so 127.0.1.1:30000 is never taken for 127.0.1.10 or another port)."""
    return f"${len(node.address)}\\r\\n{node.address}\\r\\n${len(str(node.port))}\\r\\n{node.port}"


def named_reply_bytes(node: Address) -> int:
    """The length of that whole answer (`*2`, both bulk strings): HAProxy judges a reply once it has
    this much, rather than waiting for more until `timeout check` (a Sentinel does not close on QUIT)."""
    return len(f"*2\r\n${len(node.address)}\r\n{node.address}\r\n${len(str(node.port))}\r\n{node.port}\r\n")


def haproxy_cfg(*, entry: Address, data_nodes: dict[str, Address], sentinels: list[Address], password: str,
                sentinel_password: str, tls_port: int | None = None, force_tls: bool = False) -> str:
    """An entrypoint that sends each new connection to the data node that at least QUORUM Sentinels
    name as primary and that says so itself (`role:master`), and to no node when there is none. A
    node's own check alone would route writes to a restarted old primary that still says
    `role:master` until Sentinel demotes it (DESIGN §11); and a node marked down has its open
    sessions cut (`on-marked-down shutdown-sessions`), so no client keeps writing to it.

    With `tls_port` (a cluster whose nodes serve TLS only), the entry also listens on that port and
    passes its TLS through, untouched, to the primary (whose certificate names the entry address too):
    TLS ends in Redis itself, and HAProxy holds no key. Plaintext from the entry is sent on over TLS,
    and every check speaks TLS, verifying the node's certificate with the installation's CA. With
    `force_tls`, the plaintext entry is not bound at all: nothing answers plaintext."""
    lines = [
        "global",
        "    maxconn 4096",
        "    hard-stop-after 10s",  # after a reload, the old process cuts its sessions: no client stays on a stale route
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        # No retry of a refused connection: HAProxy waits a second before each (3 by default), so a
        # client that reached a primary just killed waited 3 s; refused at once, it reconnects and
        # finds the new primary as soon as the Sentinels name it.
        "    retries 0",
        "    timeout client 330s",  # beyond Redis's `timeout 150`: the server closes idle clients first
        "    timeout server 330s",
        "    timeout check 1s",
    ]
    if not (force_tls and tls_port):
        lines += frontend("redis", entry, "data", data_nodes)
    if tls_port:
        lines += frontend("redis_tls", Address(entry.address, tls_port), "tls", data_nodes)
    verified = f" {VERIFIED}" if tls_port else ""
    for name, node in data_nodes.items():
        lines += [
            f"backend data_{name}",
            "    option tcp-check",
            f"    tcp-check send {resp('AUTH', 'default', password)}",
            "    tcp-check expect string +OK",
            f"    tcp-check send {resp('PING')}",
            "    tcp-check expect string +PONG",
            # QUIT: the server closes once it answered, so a check that does not match fails at once
            # (HAProxy would wait for more until `timeout check` before failing it: a second per check
            # of the new primary after a failover, before HAProxy routes to it).
            f"    tcp-check send {resp('INFO', 'replication')}{resp('QUIT')}",
            "    tcp-check expect string role:master",
            f"    server {name} {node}{verified} check {CHECK_TIMING} fall 2 rise 1 on-marked-down shutdown-sessions",
            f"backend named_{name}",  # one server per Sentinel: up when that Sentinel names this node
            "    option tcp-check",
            f"    tcp-check send {resp('AUTH', sentinel_password)}",
            "    tcp-check expect string +OK",
            f"    tcp-check send {resp('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)}",
            f"    tcp-check expect min-recv {named_reply_bytes(node)} string {named_primary(node)}",
        ]
        lines += [f"    server sentinel{i} {s}{verified} check {NAMED_TIMING} fall 1 rise 1" for i, s in enumerate(sentinels)]
        if tls_port:  # TLS passed through as it came: up and down with the checks of data_{name}
            lines += [f"backend tls_{name}",
                      f"    server {name} {node} track data_{name}/{name} on-marked-down shutdown-sessions"]
    lines += ["backend no_primary", "    # no server: a client is refused until the Sentinels agree on a primary"]
    return "\n".join(lines) + "\n"
