"""Restart an app's Docker containers (found by label on any host) with a new environment.

A container is recreated, not just restarted, since a container's environment is fixed at
creation. Crash-safe: the replacement is made first under `<name>-next` carrying a digest of
its environment, then the old one goes and the replacement takes its name.
"""

from __future__ import annotations

import hashlib
import json

import aiohttp
from aiodocker.exceptions import DockerError

from domain.app import refuse_database_matches
from domain.errors import LabelMatchesDatabase
from engine.ports import EffectError, TransientError

ENV_LABEL = "redis-addons.env-digest"
NEXT = "-next"


def env_digest(environment: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(environment.items())).encode()).hexdigest()[:16]


def with_environment(current: list[str], environment: dict[str, str]) -> list[str]:
    kept = [line for line in current or [] if line.split("=", 1)[0] not in environment]
    return kept + [f"{key}={value}" for key, value in sorted(environment.items())]


class DockerAppRestarter:
    def __init__(self, runtime):
        self.runtime = runtime  # the DockerRuntime: its clients, one per host

    async def restart(self, label: str, environment: dict[str, str]) -> str:
        digest, done = env_digest(environment), []
        try:
            engines = {h.docker_url: name for name, h in self.runtime.hosts.items()}  # hosts may share an engine
            found = {}
            for host in engines.values():
                docker = self.runtime.client(host)
                listed = await docker.containers.list(all=True, filters={"label": [label]})
                found[host] = {c._container["Names"][0].lstrip("/"): c for c in listed}
            # Every host is looked at before any container is touched: a label that also finds a database
            # node (registered before the rule, or put on the node since) restarts nothing at all.
            refuse_database_matches(label, [(host, name, c._container.get("Labels"))
                                            for host, by_name in found.items() for name, c in by_name.items()])
            for host, by_name in found.items():
                docker = self.runtime.client(host)
                for name in sorted(n for n in by_name if not n.endswith(NEXT)) + sorted(
                    n[: -len(NEXT)] for n in by_name if n.endswith(NEXT) and n[: -len(NEXT)] not in by_name
                ):
                    await self._recreate(docker, host, label, name, by_name, environment, digest)
                    done.append(f"{name} on {host}")
        except LabelMatchesDatabase as e:
            raise EffectError(f"app restart refused: {e}") from None
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise TransientError(f"restarting containers labelled {label}: {e}") from None
        if not done:
            return f"no container labelled {label} found: nothing restarted"
        return "recreated with the new environment: " + ", ".join(done)

    async def _recreate(self, docker, host: str, label: str, name: str, by_name: dict, environment: dict,
                        digest: str) -> None:
        current, replacement = by_name.get(name), by_name.get(name + NEXT)
        if current is not None:
            info = await current.show()
            refuse_database_matches(label, [(host, name, info["Config"]["Labels"])])  # labelled since it was listed
            if info["Config"]["Labels"].get(ENV_LABEL) == digest:
                if not info["State"]["Running"]:
                    await current.start()
                return
            if replacement is None:
                config = {
                    key: info["Config"].get(key)
                    for key in ("Image", "Cmd", "Entrypoint", "WorkingDir", "User", "Tty", "OpenStdin", "StopSignal")
                }
                config["Env"] = with_environment(info["Config"].get("Env"), environment)
                config["Labels"] = {**info["Config"]["Labels"], ENV_LABEL: digest}
                config["HostConfig"] = info["HostConfig"]
                replacement = await docker.containers.create(config, name=name + NEXT)
            await current.stop(t=10)
            await current.delete(force=True)
        await replacement.rename(name)
        await replacement.start()
