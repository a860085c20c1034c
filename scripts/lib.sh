# shellcheck shell=bash
# Common settings and helpers for the setup scripts. Source it, don't run it.
#
# Environment knobs (all optional):
#   REDIS_ADDONS_HOME        data directory (default: <repo>/var; relative = relative to the repo)
#   REDIS_ADDONS_ENGINES     "local"    = start our own three dockerd (host-a, host-b, host-c)
#                            "external" = use the engine at /var/run/docker.sock for all three hosts
#                            unset      = external if /var/run/docker.sock answers and is not
#                                         Debian's docker.io service we installed ourselves
#   REDIS_ADDONS_STORAGE_DRIVER  dockerd storage driver (default: vfs)
#   REDIS_ADDONS_ENGINE_TIMEOUT  seconds to wait for a dockerd to answer (default: 90)
#   REDIS_ADDONS_APT_MAX_AGE     seconds after which the package lists are refreshed before
#                                installing, upgrading or building images (default: 10800 = 3 h)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_home="${REDIS_ADDONS_HOME:-var}"
case "$_home" in
  /*) ADDONS_HOME="$_home" ;;
  *)  ADDONS_HOME="$REPO_ROOT/$_home" ;;
esac
unset _home
export REDIS_ADDONS_HOME="$ADDONS_HOME"

# Three failure domains: a Business cluster puts its two data nodes, three Sentinels and two
# HAProxy on different hosts. Bind addresses and port ranges are in scripts/write-hosts.sh.
ENGINE_NAMES=(host-a host-b host-c)
# A fourth engine that only the fault tests use (tests/integration/test_docker_engine_down.py): they stop
# and start its dockerd by its pid file, mid-operation. Always our own dockerd (also when host-a/b/c are an
# external engine), and not in hosts.json: an ordinary test never places a node on an engine that goes away.
FAULT_ENGINE_NAMES=(host-d)
# Three more engines for the second pytest worker (tests/conftest.py): the tests on the Docker hosts run as two
# streams, each on three engines of its own, since a stream counts what its hosts hold. Always our own dockerd,
# in scaleout-hosts.json, never in hosts.json.
SCALEOUT_ENGINE_NAMES=(host-e host-f host-g)
# host-g serves its Docker API over TCP with mutual TLS only, no unix socket: the engine, the tests and these
# scripts reach it as they would a remote host, and nothing reaches it without a client certificate of the
# installation's CA. Its files (`redis-addons host-certificates`) are under $ADDONS_HOME/docker-tls/host-g.
declare -A TLS_ENGINE_ADDRESS=([host-g]=127.0.7.1)
TLS_ENGINE_PORT=2376
RUN_BASE=/run/redis-addons
DATA_BASE=/var/lib/redis-addons
LOG_BASE=/var/log/redis-addons
EXTERNAL_SOCK=/var/run/docker.sock
# Written when *we* installed Debian's docker.io: its own docker.service then
# does not count as "a developer's engine".
DOCKER_IO_MARKER="$DATA_BASE/.docker-io-installed-by-redis-addons"
# Touched (with the time it started) after each `apt-get update` that fetched every source;
# scripts/build-images.py (image_record.py) refuses to build from lists older than APT_MAX_AGE.
APT_STAMP="$DATA_BASE/apt-lists-refreshed"
APT_MAX_AGE="${REDIS_ADDONS_APT_MAX_AGE:-10800}"
export REDIS_ADDONS_APT_STAMP="$APT_STAMP" REDIS_ADDONS_APT_MAX_AGE="$APT_MAX_AGE"
# Touched after the packages the images are made of were upgraded to their candidates.
UPGRADE_STAMP="$DATA_BASE/image-packages-upgraded"

log()  { printf '[setup] %s\n' "$*" >&2; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$APT_MAX_AGE" =~ ^[0-9]+$ ]] || die "REDIS_ADDONS_APT_MAX_AGE must be a number of seconds, not '$APT_MAX_AGE'"

engine_sock()    { echo "$RUN_BASE/$1/docker.sock"; }
engine_tls_address() { echo "${TLS_ENGINE_ADDRESS[$1]:-}"; }
ENGINE_TLS_SUBDIR=docker-tls
engine_tls_dir() { echo "$ADDONS_HOME/$ENGINE_TLS_SUBDIR/$1"; }
engine_url() {
  if [ -n "$(engine_tls_address "$1")" ]; then
    echo "tcp://$(engine_tls_address "$1"):$TLS_ENGINE_PORT"
  else
    echo "unix://$RUN_BASE/$1/docker.sock"
  fi
}
engine_pidfile() { echo "$RUN_BASE/$1/docker.pid"; }
engine_execroot(){ echo "$RUN_BASE/$1/exec"; }
engine_dataroot(){ echo "$DATA_BASE/$1"; }
engine_log()     { echo "$LOG_BASE/$1.log"; }

# docker_ping SOCKET_PATH -> 0 if a Docker engine answers GET /_ping on it; docker_ping ADDRESS:PORT DIR: over
# TLS there, the engine verified against DIR/ca.pem, with the client certificate DIR/client-cert.pem.
# Pure python3, so it works before the docker CLI is installed.
docker_ping() {
  if [ $# -eq 1 ]; then [ -S "$1" ] || return 1; else [ -f "$2/client-key.pem" ] || return 1; fi
  command -v python3 >/dev/null || return 1
  python3 - "$@" <<'EOF' 2>/dev/null
import socket, ssl, sys
try:
    if len(sys.argv) == 2:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(sys.argv[1])
    else:
        address, port = sys.argv[1].rsplit(":", 1)
        context = ssl.create_default_context(cafile=f"{sys.argv[2]}/ca.pem")
        context.load_cert_chain(f"{sys.argv[2]}/client-cert.pem", f"{sys.argv[2]}/client-key.pem")
        s = context.wrap_socket(socket.create_connection((address, int(port)), timeout=3), server_hostname=address)
    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    sys.exit(1)
status = data.split(b"\r\n", 1)[0].split()
sys.exit(0 if len(status) >= 2 and status[1] == b"200" else 1)
EOF
}

# engine_ping NAME -> 0 if our engine NAME answers, on its socket or over TLS
engine_ping() {
  if [ -n "$(engine_tls_address "$1")" ]; then
    docker_ping "$(engine_tls_address "$1"):$TLS_ENGINE_PORT" "$(engine_tls_dir "$1")"
  else
    docker_ping "$(engine_sock "$1")"
  fi
}

# docker_cli NAME URL ARG... -> the docker CLI on that engine (with its client certificate when it is over TLS)
docker_cli() {
  local name="$1" url="$2" files
  shift 2
  if [[ "$url" == tcp://* ]]; then
    files="$(engine_tls_dir "$name")"
    docker --tlsverify --tlscacert "$files/ca.pem" --tlscert "$files/client-cert.pem" --tlskey "$files/client-key.pem" \
      -H "$url" "$@"
  else
    docker -H "$url" "$@"
  fi
}

# engines_mode -> prints "local" or "external"
engines_mode() {
  case "${REDIS_ADDONS_ENGINES:-}" in
    local|external) echo "$REDIS_ADDONS_ENGINES"; return ;;
    "") ;;
    *) die "REDIS_ADDONS_ENGINES must be 'local' or 'external', not '$REDIS_ADDONS_ENGINES'" ;;
  esac
  if [ ! -e "$DOCKER_IO_MARKER" ] && docker_ping "$EXTERNAL_SOCK"; then
    echo external
  else
    echo local
  fi
}

# engine_urls -> one "name url" line per host, for the current mode
engine_urls() {
  local mode name
  mode="$(engines_mode)"
  for name in "${ENGINE_NAMES[@]}"; do
    if [ "$mode" = external ]; then
      echo "$name unix://$EXTERNAL_SOCK"
    else
      echo "$name $(engine_url "$name")"
    fi
  done
}

# pid_cmdline_has PID STRING -> 0 if process PID is alive and its command line contains STRING
pid_cmdline_has() {
  local pid="$1" needle="$2"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"
}

# pid_alive PID -> 0 if PID exists and is not a zombie (PID 1 may not reap
# orphans here, so a killed daemon can linger as a zombie; kill -0 succeeds on it).
pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
