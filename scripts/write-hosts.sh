#!/usr/bin/env bash
# Write $REDIS_ADDONS_HOME/hosts.json and fault-hosts.json (derived: rewritten on every setup).
# Each host has its own loopback address and port range. host-c's range stops at 32767, below the
# kernel's ephemeral ports (net.ipv4.ip_local_port_range starts at 32768 on Debian): a connection
# made from 127.0.3.1 (a replica's link to its primary, say) may hold one, and a node given that
# port could then not bind it. host-d (fault tests only) takes 29000-29999, below them all.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$ADDONS_HOME"
write_hosts() {
python3 -c '
import json, os, sys
spec = {"host-a": ("127.0.1.1", [30000, 30999]), "host-b": ("127.0.2.1", [31000, 31999]),
        "host-c": ("127.0.3.1", [32000, 32767]), "host-d": ("127.0.4.1", [29000, 29999]),
        "host-e": ("127.0.5.1", [26000, 26999]), "host-f": ("127.0.6.1", [27000, 27999]),
        "host-g": ("127.0.7.1", [28000, 28999])}
hosts = []
for line in sys.stdin:
    name, url, *tls = line.split()  # tls: the directory of its certificates, relative to the hosts file
    bind, ports = spec[name]
    host = {"name": name, "docker_url": url, "bind": bind, "ports": ports, "memory_mib": 16384}
    if tls:
        host["tls"] = {"ca": f"{tls[0]}/ca.pem", "cert": f"{tls[0]}/client-cert.pem", "key": f"{tls[0]}/client-key.pem"}
    hosts.append(host)
text = "{\"hosts\": [\n" + ",\n".join("  " + json.dumps(h) for h in hosts) + "\n]}\n"
json.loads(text)  # sanity
out = sys.argv[1]
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write(text)
os.replace(tmp, out)
' "$1"
}
engine_urls | write_hosts "$ADDONS_HOME/hosts.json"
# host-d, the engine the fault tests stop and start, in a file of its own (FAULT_ENGINE_NAMES in lib.sh).
for name in "${FAULT_ENGINE_NAMES[@]}"; do echo "$name $(engine_url "$name")"; done | write_hosts "$ADDONS_HOME/fault-hosts.json"
# host-e/f/g, the second test worker's engines (SCALEOUT_ENGINE_NAMES in lib.sh), in a file of their own;
# host-g over TCP with mutual TLS, with the files scripts/engines.sh issued for it (under the data directory).
for name in "${SCALEOUT_ENGINE_NAMES[@]}"; do
  echo "$name $(engine_url "$name") $([ -n "$(engine_tls_address "$name")" ] && echo "${ENGINE_TLS_SUBDIR}/$name")"
done | write_hosts "$ADDONS_HOME/scaleout-hosts.json"
