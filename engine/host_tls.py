"""A Docker host reached over TCP with mutual TLS, as hosts.json describes it.

Docker's API is root on the host it runs on: an engine listening on TCP is only ever reached with
TLS both ways (the host's certificate checked against a CA, the engine's client certificate shown),
so a tcp:// host without its `tls` files, or with a private key others may read, is refused at start.
The files are named by path, relative to the hosts file's directory; what they hold is read by the
Docker adapter when it connects (adapters/docker/connection.py).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

TLS_SCHEMES = ("tcp://", "https://")  # the engine speaks HTTPS to both
TLS_FILES = ("ca", "cert", "key")


class HostTLSError(ValueError):
    """The host's TLS entry cannot be used; the message says which file and why (never what it holds)."""


@dataclass(frozen=True)
class HostTLS:
    ca: Path  # the CA the host's server certificate must be signed by
    cert: Path  # the engine's client certificate, which the host's dockerd checks (--tlsverify)
    key: Path  # its private key: readable by its owner only


def needs_tls(docker_url: str) -> bool:
    return docker_url.startswith(TLS_SCHEMES)


def https_url(docker_url: str) -> str:
    """tcp://ADDRESS:PORT as the URL HTTPS requests go to."""
    for scheme in TLS_SCHEMES:
        if docker_url.startswith(scheme):
            return "https://" + docker_url[len(scheme):]
    raise HostTLSError(f"{docker_url} is not a tcp:// address")


def host_tls(name: str, docker_url: str, entry: object, directory: Path) -> HostTLS | None:
    """The host's TLS files, checked: there, readable, the key private. None for a unix socket."""
    if docker_url.startswith("http://"):
        raise HostTLSError(f"host {name}: {docker_url} is plain HTTP, which would hand Docker (root on the host) to "
                           "anyone on the path: give tcp://ADDRESS:2376 with \"tls\": {\"ca\", \"cert\", \"key\"}")
    if not needs_tls(docker_url):
        if entry is not None:
            raise HostTLSError(f"host {name}: \"tls\" is for a tcp:// docker_url, not {docker_url}")
        return None
    if not isinstance(entry, dict) or set(entry) != set(TLS_FILES) or not all(isinstance(entry[k], str) for k in TLS_FILES):
        raise HostTLSError(
            f"host {name}: a tcp:// Docker host needs \"tls\": {{\"ca\": PATH, \"cert\": PATH, \"key\": PATH}} (the CA of "
            "its server certificate, the engine's client certificate and key; `redis-addons host-certificates` "
            "issues them), got " + (f"keys {sorted(entry)}" if isinstance(entry, dict) else repr(type(entry).__name__)))
    files = HostTLS(*(directory / entry[k] for k in TLS_FILES))
    for role, path in zip(TLS_FILES, (files.ca, files.cert, files.key)):
        readable_file(name, role, path)
    mode = files.key.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise HostTLSError(f"host {name}: the private key {files.key} is open to others (mode {stat.filemode(mode)}): "
                           f"chmod 600 {files.key}")
    return files


def readable_file(name: str, role: str, path: Path) -> None:
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise HostTLSError(f"host {name}: tls {role} file {path} does not exist") from None
    except IsADirectoryError:
        raise HostTLSError(f"host {name}: tls {role} {path} is a directory, not a PEM file") from None
    except OSError as e:
        raise HostTLSError(f"host {name}: cannot read tls {role} file {path}: {e.strerror}") from None
