"""What a node's container is made of: its least-privilege settings, its volumes and the files of its
configuration, as the Docker API takes them."""

from __future__ import annotations

import io
import tarfile
from pathlib import PurePosixPath

from engine.ports import NodeSpec


def config_archive(files: dict[str, str], owner: tuple[int, int] = (999, 999)) -> bytes:
    """A tar of these files (relative paths), as the Docker archive API wants it. Readable by their
    `owner` only, the user the server runs as (by default the engine images' redis): a TLS key is
    among them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = sorted({str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            info.uid, info.gid = owner
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.uid, info.gid = owner
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def config_volume(volume: str) -> str:
    """A node's redis.conf and certificates live on a volume of their own beside its data volume, so its
    container can be recreated at any time (they were once in the container's root filesystem, lost
    with it); a plan change still copies only the data."""
    return f"{volume}-config"


def config_volume_labels(volume: str, labels: dict[str, str]) -> dict[str, str]:
    """The node's labels (so whatever removes an app's volumes by label finds it too), but not its addon
    label: counted by addon, a node has one volume, its data."""
    kept = {key: value for key, value in labels.items() if key != "redis-addons.addon"}
    return {**kept, "redis-addons.config-of": volume}


# Least privilege for every container (README, "What runs with which privileges"): the server runs as
# its image's user, never root, from a read-only root filesystem (its data and configuration are on
# volumes), with no capability (Redis, Sentinel and HAProxy bind ports above 1024 and touch only files
# of their own user) and no way to gain privileges back (no setuid binary in the images anyway).
# Threads count against the pids limit. Redis and Sentinel run 5 (main, 3 background I/O threads,
# jemalloc's; more with io-threads) plus one child per save or AOF rewrite; HAProxy a master and a worker
# with one thread per CPU of the host, and for up to 10 s after a reload the old worker too (`docker top`:
# 5, and 1 + 2 on a 2-CPU host). 256 leaves room for a reloading HAProxy on a 120-CPU host and still
# stops a fork bomb at once.
PIDS_LIMIT = 256
NO_NEW_PRIVILEGES = "no-new-privileges:true"
DATA_DIR = "/data"
# A container made on a data volume that held files already (made by an earlier release, whose server ran
# as root): at its first start the files it finds there become its user's (DockerRuntime.start_node).
ADOPTS_LABEL = "redis-addons.adopts-volume"


def user_of(config: dict) -> tuple[int, int] | None:
    """The numeric uid:gid a container runs as (its Config.User, else the image's); None for root."""
    uid, _, gid = (config.get("User") or "0").partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return None
    return int(uid), int(gid or uid)


def container_config(spec: NodeSpec, adopts: bool = False) -> dict:
    """The container create body for a node; `adopts`: its data volume held files already."""
    uid, gid = spec.files_owner
    config = {
        "Image": spec.image,
        "User": f"{uid}:{gid}",
        "Labels": {**spec.labels, **({ADOPTS_LABEL: "1"} if adopts else {})},
        "StopTimeout": 30,
        "HostConfig": {
            "NetworkMode": "host",  # bound to the host's 127.x address, never a bridge
            "Memory": spec.memory_bytes,
            "MemorySwap": spec.memory_bytes,  # the same: no swap
            "Mounts": [{"Type": "volume", "Source": spec.volume, "Target": DATA_DIR},
                       {"Type": "volume", "Source": config_volume(spec.volume), "Target": spec.config_dir}],
            "RestartPolicy": {"Name": "unless-stopped"},
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": [NO_NEW_PRIVILEGES],
            "PidsLimit": PIDS_LIMIT,
        },
    }
    if spec.command:  # none: the image's own (a component's, with its configuration file)
        config["Cmd"] = spec.command
    return config
