"""The ports through which the engine reaches the outside world (adapters implement them)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import AsyncIterator, Protocol

from engine.stats import DatabaseFigures


class EffectError(Exception):
    """An effect on Docker or Redis failed for good: retrying will not help."""


class ArchiveAltered(EffectError):
    """A stored backup archive fails its authentication (altered or cut on disk): none of it is trusted.
    `at`: the byte of the stored file where the first altered chunk begins."""

    def __init__(self, message: str, at: int):
        super().__init__(message)
        self.at = at


class TransientError(Exception):
    """An effect failed in a way that a retry may cure (engine busy, server starting)."""


class EngineUnreachable(TransientError):
    """A host's Docker engine does not answer at all (stopped, its socket gone): a step waits for it no
    longer than the default step deadline, even a step allowed longer to move data (engine/saga.py)."""


@dataclass(frozen=True)
class NodeSpec:
    """One Redis node to run: everything Docker needs, named so that re-running is harmless."""

    host: str
    container: str
    volume: str
    image: str
    command: list[str]
    config_dir: str
    # Paths inside config_dir -> contents: redis.conf (it holds only the password's hash) and, on a
    # node serving TLS, its certificate and private key (hence kept out of repr).
    files: dict[str, str] = field(repr=False)
    memory_bytes: int
    labels: dict[str, str] = field(default_factory=dict)
    # The uid:gid the server runs as, never root (the engine images' redis user by default; a Sentinel's
    # or HAProxy's own from the components catalog), owner of its files (0600). An empty command keeps
    # the image's own.
    files_owner: tuple[int, int] = (999, 999)


@dataclass(frozen=True)
class Endpoint:
    """Where and how the engine reaches a node's server."""

    address: str
    port: int
    password: str = field(repr=False)
    tls: bool = False

    def __str__(self) -> str:
        return f"{self.address}:{self.port}{' (TLS)' if self.tls else ''}"


@dataclass(frozen=True)
class NodeState:
    host: str
    container: str
    running: bool
    labels: dict[str, str]
    state: str = ""  # Docker's word: running, restarting (a crash loop under its restart policy), exited, ...
    status: str = ""  # as `docker ps` says it: "Exited (137) 5 seconds ago"


@dataclass(frozen=True)
class Survey:
    """What the hosts hold, from those that answered; `silent` names each host that did not, with why."""

    nodes: list[NodeState]
    silent: dict[str, str]


@dataclass(frozen=True)
class PresentedCertificate:
    sha256: str  # of the certificate (DER): tells one certificate from the next
    not_after: datetime  # UTC


@dataclass(frozen=True)
class ContainerReading:
    """One read of a container's figures (Docker's stats API and its settings). CPU % needs two reads:
    the sampler keeps the previous one (a one-shot read has no "precpu"), as `docker stats` does."""

    running: bool
    started_at: str  # changes when the container (re)starts
    cpu_total_ns: int
    system_cpu_ns: int
    online_cpus: int
    memory_used_bytes: int  # usage less the inactive file cache
    memory_limit_bytes: int
    swap_allowed: bool  # False: the swap limit equals the memory limit
    swap_used_bytes: int | None = None  # where swap is allowed and the host tells it


class Runtime(Protocol):
    """Docker engines, by host name."""

    async def check(self) -> None:
        """Raise EffectError naming each host that does not answer."""

    async def create_node(self, spec: NodeSpec) -> None:
        """Create the volume and the container if absent, and put the configuration in."""

    async def start_node(self, host: str, container: str) -> None: ...

    async def is_running(self, host: str, container: str, steadily: bool = False) -> bool | None:
        """True or False; None when there is no such container. `steadily`: one Docker is restarting (its
        server exits at start, and the restart policy tries again) counts as not running."""

    async def copy_data(
        self, from_host: str, from_container: str, to_host: str, to_container: str, path: str, read_back: bool = False
    ) -> dict:
        """Copy a directory between containers (the source stopped, the target not started), hashing
        each file on the way; with `read_back`, check each file landed byte for byte.
        Returns {"files", "bytes", "sha256": {file: digest}, "read_back"}."""

    def read_file(self, host: str, container: str, path: str) -> AsyncIterator[bytes]:
        """One file of a container, as the tar stream of the Docker archive API (a running container is fine)."""

    async def put_files(self, host: str, container: str, path: str, tar: AsyncIterator[bytes]) -> None:
        """Unpack a tar stream into directory `path` of a container (the container need not run)."""

    async def stop_node(self, host: str, container: str, timeout_s: int) -> None:
        """Stop if running; a missing container counts as stopped."""

    async def remove_node(self, host: str, container: str, volume: str | None) -> None:
        """Remove the container and its volume; missing ones count as removed."""

    async def node_logs(self, host: str, container: str, lines: int = 20) -> str: ...

    async def nodes(self, **labels: str) -> list[NodeState]:
        """Every container on every host carrying these labels."""

    async def survey(self, **labels: str) -> Survey:
        """Like `nodes`, from the hosts that answer within seconds; a host down is named, not raised."""

    async def signal_node(self, host: str, container: str, signal: str) -> None:
        """Send a signal to a running container's first process (HAProxy reloads on SIGUSR2)."""

    async def ports_in_use(self) -> frozenset[tuple[str, int]]:
        """(host, port) of every node container found on the hosts that answer, whoever made it."""

    async def containers_labelled(self, label: str) -> list[NodeState]:
        """Every container carrying this label (KEY=VALUE) on every host, whoever made it."""

    async def close(self) -> None: ...

    async def image_labels(self, host: str, image: str) -> dict[str, str] | None:
        """The labels of an image on this host (what the setup recorded building it); None when absent."""

    async def image_id(self, host: str, image: str) -> str | None:
        """The ID of the image that `image` (a tag) names on this host now; None when the host has none.
        A rebuild moves the tag to a new image: the nodes made before run the old one."""

    async def container_image_id(self, host: str, container: str) -> str | None:
        """The ID of the image the container was made from; None when there is no such container."""

    async def container_reading(self, host: str, container: str) -> ContainerReading | None:
        """The container's figures now; None when there is no such container."""

    async def stored_bytes(self, host: str, container: str, directory: str, rdb: str, aof_dir: str,
                           aof_file: str) -> int:
        """The size of the server's data files as stored in `directory`: the RDB file `rdb` and the
        AOF (the files the manifest of `aof_dir` lists, Redis 7+; else the one file `aof_file`)."""


class RedisAdmin(Protocol):
    async def ping(self, node: Endpoint) -> None:
        """Return when the server answers PING with this password; raise TransientError otherwise."""

    async def replication(self, node: Endpoint) -> dict:
        """INFO replication: role, connected replicas and their state."""

    async def sentinel_view(self, node: Endpoint, master: str) -> dict:
        """What a Sentinel knows of `master`: {"primary": "address:port" or None, "sentinels": how many
        others, "replicas": how many, "sentinels_up" / "replicas_up": the addresses of those it does
        not see down, "replicas_electable": of the replicas up, those whose priority it last read is not 0,
        "failing_over": it is in the middle of a failover (it names the promoted replica already)}."""

    def sentinel_notices(self, node: Endpoint, channels) -> AbstractAsyncContextManager[AsyncIterator[tuple[str, str]]]:
        """Subscribed to a Sentinel's `channels` (+sdown, +switch-master, ...): the (channel, message)
        pairs it publishes, as they come; raises when the connection is lost or falls silent."""

    async def sentinel_reset(self, node: Endpoint, master: str) -> None:
        """SENTINEL RESET: forget the replicas and other Sentinels of `master`, and find the live ones again."""

    async def sentinel_reads_often(self, node: Endpoint) -> None:
        """The Sentinel reads its nodes' INFO every second rather than every 10 s (until it restarts): it sees
        a replica made electable within a second."""

    async def sentinel_failover(self, node: Endpoint, master: str) -> None:
        """SENTINEL FAILOVER: this Sentinel promotes a replica of `master` now, without asking the
        others; raises TransientError when it cannot yet (no replica it may elect, one in progress)."""

    async def pause_writes(self, node: Endpoint, pause_ms: int) -> None:
        """CLIENT PAUSE WRITE: commands that would write wait (at most `pause_ms`); reads go on."""

    async def resume_writes(self, node: Endpoint) -> None:
        """CLIENT UNPAUSE: the writes waiting go on."""

    async def answering(self, node: Endpoint) -> str:
        """"address:port" of the server that answers a new connection to `node` (through an entry, the
        data node HAProxy sends it to)."""

    async def demote(self, node: Endpoint, primary_address: str, primary_port: int) -> None:
        """REPLICAOF the new primary, then its clients disconnected (they reconnect through the entry):
        a write waiting on it is refused from then on, never acknowledged on a node about to resync."""

    async def stand_alone(self, node: Endpoint) -> None:
        """REPLICAOF NO ONE: a primary of its own (a primary already: nothing changes)."""

    async def used_memory(self, node: Endpoint) -> int:
        """Bytes the server uses (INFO memory used_memory)."""

    async def freeze(self, node: Endpoint, pause_ms: int) -> dict:
        """Pause writes, save to disk, and return the keys and expiring keys per database of the file
        ({"keys": {db: n}, "expires": {db: n}}); the node's stop then need not save again."""

    async def unpause(self, node: Endpoint, save_rules: str) -> None:
        """Undo a freeze on a node that keeps running: its save rules back (as in redis.conf), writes flowing."""

    async def snapshot(self, node: Endpoint) -> dict:
        """Save the data in the background (BGSAVE) without stopping writes for longer than the fork, and
        return when the file is written: {"keys": {db: count}, "expires": {db: count}, "used_memory": bytes}
        at that moment.
        The save rules stay off until resume_saves, so that the file is not replaced while it is read."""

    async def resume_saves(self, node: Endpoint, save_rules: str) -> None:
        """The save rules back after a snapshot, as in redis.conf."""

    async def configure(self, node: Endpoint, parameters: dict[str, str]) -> None:
        """CONFIG SET each parameter on the running server; return once it is in effect (an AOF
        turned on has been written whole)."""

    async def configure_together(self, node: Endpoint, parameters: dict[str, str]) -> None:
        """One CONFIG SET of all these parameters, which the server checks together (Redis 7 and later)."""

    async def configuration(self, node: Endpoint, names: list[str]) -> dict[str, str]:
        """CONFIG GET of these parameters."""

    async def keyspace(self, node: Endpoint) -> dict:
        """{"keys": {db: count}, "expires": {db: count}} now (INFO keyspace)."""

    async def disconnect_plaintext_clients(self, node: Endpoint, port: int) -> int:
        """Close every connection made to plaintext `port` (once TLS is forced none may stay); return how many."""

    async def reload_certificate(self, node: Endpoint, cert_file: str, key_file: str) -> None:
        """The server loads its certificate and key again from these files, without a restart. The
        node is verified as ours and at its address, but not its dates: an expired certificate too."""

    async def presented_certificate(self, node: Endpoint) -> PresentedCertificate:
        """The TLS certificate the server presents now (read, not verified: an expired one too)."""

    async def database_figures(self, node: Endpoint) -> DatabaseFigures:
        """The server's figures from INFO (server, clients, memory, stats, replication, keyspace), over a
        connection kept open for the next read (its server counts it among its clients)."""

    async def close(self) -> None:
        """Close the connections database_figures keeps (the stats sampler's: it calls this as it stops)."""

    async def snapshot_in_sync(self, replica: Endpoint, primary: Endpoint, within_s: float) -> dict:
        """`snapshot` taken on a replica of `primary` once it is in sync: it has applied every write the
        primary had made when asked (its own offset reaches the primary's master_repl_offset, read
        first), which it must do within `within_s`. Returns snapshot's dict with "in_sync": True,
        "offset" (the replica's at the fork: the file's) and "primary_offset" (the primary's it was
        checked against); or {"in_sync": False, "offset", "primary_offset"}, nothing saved and its save
        rules untouched, when it was not in sync in time. The primary neither forks nor pauses."""


class Checkpoints(Protocol):
    """Where a read model kept in memory writes what it knows and the log position it reflects."""

    def load(self, name: str) -> dict | None:
        """The state last saved under `name`; None when there is none (or it cannot be read)."""

    def save(self, name: str, state: dict) -> None:
        """Replace the state under `name`, all or nothing."""


class Certificates(Protocol):
    """The installation's certificate authority (DESIGN §5: TLS)."""

    @property
    def certificate_pem(self) -> str:
        """The CA certificate, for clients to verify the nodes."""

    def issue_server_certificate(self, address: str, names: tuple[str, ...]) -> tuple[str, str]:
        """(certificate PEM, private key PEM) of a node bound to `address`, also known by DNS `names`."""


class BackupStore(Protocol):
    """Where backup archives live: a directory by default; an object store would fit the same port."""

    async def write_archive(self, name: str, tar: AsyncIterator[bytes]) -> dict:
        """Store a tar stream gzipped under `name`, all or nothing (a failure leaves no file behind), encrypted
        at rest where the store does so. Returns {"size", "sha256", "location"} of the .tar.gz (what a download gives)."""

    def read(self, name: str, start: int = 0, end: int | None = None,
             recorded: tuple[int, str] | None = None) -> AsyncIterator[bytes]:
        """The archive's .tar.gz bytes [start, end), decrypted as they are read: ArchiveAltered at the first
        chunk that fails its authentication, and before any byte when it is not the `recorded` (size, sha256)."""

    def read_tar(self, name: str) -> AsyncIterator[bytes]:
        """The archive's tar stream, uncompressed."""

    async def checksum(self, name: str) -> tuple[int, str] | None:
        """(size, sha256) of the archive's .tar.gz, read again whole (every chunk authenticated: ArchiveAltered
        otherwise); None when it is not there."""

    async def delete(self, name: str) -> None:
        """Remove the archive; a missing one counts as removed."""


class AppRestarter(Protocol):
    async def restart(self, app: str, method: dict, environment: dict[str, str]) -> str:
        """Restart the app with this environment, idempotently; return what was done."""


class SecretStore(Protocol):
    def password_for(self, addon: str) -> str:
        """The addon's password, created once and then always the same."""

    def peek(self, addon: str) -> str | None: ...

    def forget(self, addon: str) -> None: ...


class ReadModels(Protocol):
    """What projections offer to the engine's queries."""

    def position(self) -> int: ...

    def process(self, notification_id: int, event: object) -> None: ...

    def transaction(self) -> AbstractContextManager:
        """Events process()ed inside are applied in one transaction (a follower's batch)."""

    def cannot_write(self, error: BaseException) -> str | None:
        """Why they cannot write when `error` (from `process`) is their store refusing for now (disk full,
        read-only); None for any other error."""

    def addons(self, app: str | None = None) -> list[dict]: ...

    def addon(self, name: str) -> dict | None: ...

    def apps(self) -> list[str]: ...

    def environment(self, app: str) -> list[dict]: ...

    def operations(self, addon: str | None = None) -> list[dict]: ...

    def operation_counts(self) -> list[dict]:
        """How many operations of each kind are in each status: [{kind, status, n}]."""

    def backups(self, addon: str | None = None, include_deleted: bool = False) -> list[dict]: ...

    def backup(self, backup_id: str) -> dict | None: ...

    def addons_with_backups(self) -> list[str]: ...

    def last_scheduled_day(self, addon: str) -> str | None: ...

    def snapshot(self) -> dict: ...


class DataLock(Protocol):
    """One engine per data directory, held from start to stop: two would resume the same operations
    and both schedulers would take backups."""

    def acquire(self) -> None:
        """Hold it, or raise an error naming the engine that does (its pid, its API address)."""

    def announce(self, api: str) -> None:
        """The API address this engine serves, for an engine refused to name."""

    def still_held(self) -> bool:
        """False once another engine holds this one's identity (a lock that can be lost: engine/identity_watch.py)."""

    def release(self) -> None:
        """Idempotent."""
