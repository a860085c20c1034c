"""A node's data directory copied from one Docker engine to another through the archive API, every
file hashed as it passes and, when asked, read back from the target and compared."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import PurePosixPath

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from adapters.docker.container_config import user_of
from adapters.docker.errors import translate
from adapters.docker.tar_owner import owned_by
from adapters.docker.tar_stream import tar_file_digests
from engine.ports import EffectError

# aiohttp asks for gzip by default, and dockerd then compresses archives on one core at ~40 MB/s:
# the tar is ten times faster as it is (a backup compresses it once, its own way).
UNCOMPRESSED = {"Accept-Encoding": "identity"}


async def file_digests(docker: aiodocker.Docker, container: str, path: str) -> dict[str, tuple[int, str]]:
    """{file name: (size, sha256)} of every regular file under `path`, read as a stream."""
    async with docker._query(f"containers/{container}/archive", params={"path": path}, headers=UNCOMPRESSED) as response:
        return await tar_file_digests(response.content)


def named_under(path: str, digests: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Files of the archive of `path/.` ("./dump.rdb") named as in the archive of `path` ("data/dump.rdb")."""
    base = PurePosixPath(path).name
    return {f"{base}/{name.removeprefix('./')}": value for name, value in digests.items()}


class QueueStream:
    """The chunks a tee puts in a queue, read back as a stream (b"" at the end)."""

    def __init__(self, queue: asyncio.Queue):
        self._queue = queue

    async def read(self, _: int) -> bytes:
        return await self._queue.get()


async def copy_data(
    docker: Callable[[str], aiodocker.Docker],
    from_host: str, from_container: str, to_host: str, to_container: str, path: str, read_back: bool = False,
) -> dict:
    """DockerRuntime.copy_data, with `docker` giving each host's client."""
    source, target = docker(from_host), docker(to_host)
    contents = f"{path.rstrip('/')}/."
    passing: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        owner = user_of((await (await target.containers.get(to_container)).show())["Config"])
        async with source._query(f"containers/{from_container}/archive", params={"path": contents},
                                 headers=UNCOMPRESSED) as response:
            hashing = asyncio.create_task(tar_file_digests(QueueStream(passing)))

            async def tee():
                async for chunk in response.content.iter_chunked(1 << 20):
                    passing.put_nowait(chunk)
                    yield chunk
                passing.put_nowait(b"")

            async with target._query(
                f"containers/{to_container}/archive", method="PUT", params={"path": path},
                data=owned_by(tee(), *owner) if owner else tee(), headers={"Content-Type": "application/x-tar"},
            ):
                pass
            sent = named_under(path, await hashing)
        landed = named_under(path, await file_digests(target, to_container, contents)) if read_back else sent
    except (DockerError, aiohttp.ClientError, OSError) as e:
        raise translate(e, f"copying {path} from {from_container} on {from_host} to {to_container} on {to_host}") from None
    if sent != landed:
        differ = sorted(set(sent.items()) ^ set(landed.items()))
        raise EffectError(f"copy of {path} to {to_host} is not identical: {[name for name, _ in differ][:5]}")
    return {
        "files": len(sent),
        "bytes": sum(size for size, _ in sent.values()),
        "sha256": {name: digest for name, (_, digest) in sorted(sent.items())},
        "read_back": read_back,
    }
