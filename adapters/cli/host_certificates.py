"""`host-certificates HOST --address IP --out DIR`: a Docker host reached over TCP with mutual TLS, set up
from the installation's CA ($REDIS_ADDONS_HOME/tls, made if there is none yet). Run on the engine's machine
(it reads the CA's key, never through the API). Prints the host's dockerd flags and its hosts.json entry;
never a key."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
from pathlib import Path

from adapters.cli.client import CliError


def arguments(p) -> None:
    p.add_argument("host", metavar="HOST", help="the host's name in hosts.json, e.g. host-g")
    p.add_argument("--address", required=True, metavar="IP", help="the IP address the engine reaches its Docker API at "
                   "(the server certificate's subject alternative name)")
    p.add_argument("--port", type=int, default=2376, help="its Docker API port (default: 2376)")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write ca.pem, server-cert.pem, server-key.pem "
                   "(for the host), client-cert.pem and client-key.pem (for the engine); keys 0600")


def host_certificates(args, env=os.environ) -> int:
    # imported here: every other verb's parser loads this module, and they need no cryptography
    from adapters.tls import CertificateAuthority, CertificateAuthorityError
    from adapters.tls.docker_host import dockerd_flags, hosts_entry, issue_host_files

    home = Path(env.get("REDIS_ADDONS_HOME", "var")).resolve()
    hosts_file = Path(env.get("REDIS_ADDONS_HOSTS", home / "hosts.json"))
    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: give a TCP port (1-65535)")
    try:
        ipaddress.ip_address(args.address)
    except ValueError:
        raise CliError(f"--address {args.address!r} is not an IP address: the host's certificate names the IP "
                       "the engine connects to") from None
    try:
        authority = CertificateAuthority.load_or_create(home / "tls")
        files = issue_host_files(authority, args.address, Path(args.out))
    except (CertificateAuthorityError, ValueError, OSError) as e:
        raise CliError(str(e)) from None
    print(f"issued by {authority.subject} into {args.out} (keys readable by their owner only)")
    print(f"\nstart the host's dockerd with (its API on {args.address}:{args.port} only, a client certificate required):")
    print("  dockerd " + shlex.join(dockerd_flags(files, args.address, args.port)))
    print(f"\nlist it in {hosts_file} (with its \"ports\": [FIRST, LAST] and \"memory_mib\"):")
    print("  " + json.dumps(hosts_entry(args.host, files, args.address, args.port, hosts_file.parent)))
    return 0
