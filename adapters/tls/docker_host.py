"""The files a Docker host reached over TCP needs, issued by the installation's CA: the host's server
certificate (for its address) and the engine's client certificate, which the host's dockerd
(--tlsverify) requires. The CA signs the nodes' certificates too, but those say serverAuth only,
and dockerd takes a client certificate only when it says clientAuth.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from adapters.tls.certificates import CertificateAuthority, _write_atomically

CLIENT_NAME = "redis-addons-engine"


class HostFiles(NamedTuple):
    ca: Path
    server_cert: Path
    server_key: Path  # for the host's dockerd
    client_cert: Path
    client_key: Path  # for the engine

    @classmethod
    def under(cls, directory: Path) -> HostFiles:
        return cls(*(Path(directory) / name for name in (
            "ca.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")))


def issue_host_files(authority: CertificateAuthority, address: str, directory: Path, days: int = 825) -> HostFiles:
    """Written into `directory` (keys 0600); refused, nothing written, when one of them is there already:
    a key in use is never replaced by surprise."""
    files = HostFiles.under(directory)
    if there := [str(f) for f in files if f.exists()]:
        raise FileExistsError(f"already there: {', '.join(there)}; remove them (or give another --out) to issue new ones")
    server = authority.issue_server_certificate(address, names=(), days=days)  # ValueError: not an IP address
    client = authority.issue_client_certificate(CLIENT_NAME, days=days)
    Path(directory).mkdir(parents=True, exist_ok=True, mode=0o755)
    for path, data, mode in ((files.ca, authority.certificate_pem, 0o644),
                             (files.server_key, server[1], 0o600), (files.server_cert, server[0], 0o644),
                             (files.client_key, client[1], 0o600), (files.client_cert, client[0], 0o644)):
        _write_atomically(path, data.encode("ascii"), mode)
    return files


def dockerd_flags(files: HostFiles, address: str, port: int) -> list[str]:
    """The host's dockerd listening on its address only, with mutual TLS."""
    return ["-H", f"tcp://{address}:{port}", "--tlsverify", f"--tlscacert={files.ca}",
            f"--tlscert={files.server_cert}", f"--tlskey={files.server_key}"]


def hosts_entry(name: str, files: HostFiles, address: str, port: int, relative_to: Path) -> dict:
    """The host as hosts.json lists it (paths relative to the hosts file's directory when they are below it)."""
    def shown(path: Path) -> str:
        path = path.resolve()
        return str(path.relative_to(relative_to.resolve())) if path.is_relative_to(relative_to.resolve()) else str(path)

    return {"name": name, "docker_url": f"tcp://{address}:{port}", "bind": address,
            "tls": {"ca": shown(files.ca), "cert": shown(files.client_cert), "key": shown(files.client_key)}}
