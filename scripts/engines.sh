#!/usr/bin/env bash
# Local Docker engines host-a, host-b and host-c (ENGINE_NAMES in lib.sh), the fault tests' host-d
# (FAULT_ENGINE_NAMES) and the second test stream's host-e/f/g (SCALEOUT_ENGINE_NAMES): start | stop | status [ENGINE...]
#
# host-g (TLS_ENGINE_ADDRESS) listens only on tcp://127.0.7.1:2376 with --tlsverify: its server certificate and
# the engine's client certificate are issued by the installation's CA ($REDIS_ADDONS_HOME/tls) with
# `redis-addons host-certificates` (so the .venv must be there), again when that CA changed or one of them
# expires within 30 days; a running host-g is then restarted on the new ones.
#
# Each engine is a dockerd from Debian's docker.io with its own socket, data
# root, exec root and pid file. dockerd starts its own containerd, whose state
# lives under the exec root (<exec-root>/containerd/containerd.sock), so no two
# share a containerd. No bridge, no iptables: containers use host
# networking on loopback only.
#
# When REDIS_ADDONS_ENGINES=external (or auto-detected: an engine we did not
# start answers on /var/run/docker.sock), only host-d is started or stopped here.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STORAGE_DRIVER="${REDIS_ADDONS_STORAGE_DRIVER:-vfs}"
TIMEOUT="${REDIS_ADDONS_ENGINE_TIMEOUT:-90}"

dockerd_bin() {
  local b
  for b in /usr/sbin/dockerd /usr/bin/dockerd; do
    [ -x "$b" ] && { echo "$b"; return; }
  done
  command -v dockerd || die "dockerd not found (is docker.io installed? run scripts/install-packages.sh)"
}

# A pid file is "ours and live" when its process is a dockerd writing that pid file (it names it: --pidfile).
live_engine_pid() {
  local name="$1" pf pid
  pf="$(engine_pidfile "$name")"
  [ -f "$pf" ] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  pid_cmdline_has "$pid" "--pidfile $pf" || return 1
  echo "$pid"
}

live_containerd_pid() {
  local name="$1" pf pid
  pf="$(engine_execroot "$name")/containerd/containerd.pid"
  [ -f "$pf" ] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  pid_cmdline_has "$pid" "$(engine_execroot "$name")/containerd/containerd.toml" || return 1
  echo "$pid"
}

check_cgroups() {
  # Memory limits need the memory controller: cgroup v1 "memory" hierarchy or cgroup v2 with "memory".
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    grep -qw memory /sys/fs/cgroup/cgroup.controllers \
      || warn "cgroup v2 without the memory controller: docker run --memory will not be enforced"
    return
  fi
  if [ -d /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    return
  fi
  if ! mountpoint -q /sys/fs/cgroup 2>/dev/null; then
    log "no cgroup filesystem mounted; mounting cgroup2 on /sys/fs/cgroup"
    mount -t cgroup2 none /sys/fs/cgroup || warn "could not mount cgroup2"
    return
  fi
  warn "no cgroup memory controller found under /sys/fs/cgroup: docker run --memory will not be enforced"
}

# issue_engine_certificates NAME -> 0 when the TLS engine's certificates were issued now (1: those there are good)
issue_engine_certificates() {
  local name="$1" files cli
  files="$(engine_tls_dir "$name")"
  if [ -f "$files/server-key.pem" ] && [ -f "$files/client-key.pem" ] && [ -x "$REPO_ROOT/.venv/bin/python" ] \
      && cmp -s "$files/ca.pem" "$ADDONS_HOME/tls/ca.pem" && "$REPO_ROOT/.venv/bin/python" - "$files" <<'EOF'
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from cryptography import x509
soon = datetime.now(timezone.utc) + timedelta(days=30)
sys.exit(0 if all(x509.load_pem_x509_certificate(Path(sys.argv[1], f).read_bytes()).not_valid_after_utc > soon
                  for f in ("server-cert.pem", "client-cert.pem")) else 1)
EOF
  then
    return 1
  fi
  cli="$REPO_ROOT/.venv/bin/redis-addons"
  [ -x "$cli" ] || die "$name: its TLS certificates are issued by $cli: make the .venv first (scripts/setup-venv.sh)"
  rm -f "$files"/{ca,server-cert,server-key,client-cert,client-key}.pem
  log "$name: issuing its server and client certificates from the installation's CA ($ADDONS_HOME/tls) into $files"
  "$cli" host-certificates "$name" --address "$(engine_tls_address "$name")" --port "$TLS_ENGINE_PORT" --out "$files" >/dev/null
}

# listen_flags NAME -> dockerd's -H: its unix socket, or (host-g) its loopback address over mutual TLS only
listen_flags() {
  local name="$1" files
  if [ -z "$(engine_tls_address "$name")" ]; then
    echo "-H unix://$(engine_sock "$name")"
    return
  fi
  files="$(engine_tls_dir "$name")"
  echo "-H $(engine_url "$name") --tlsverify --tlscacert=$files/ca.pem --tlscert=$files/server-cert.pem --tlskey=$files/server-key.pem"
}

start_one() {
  local name="$1" pf execroot dataroot logf pid cpid start_ts
  pf="$(engine_pidfile "$name")"
  execroot="$(engine_execroot "$name")"
  dataroot="$(engine_dataroot "$name")"
  logf="$(engine_log "$name")"

  if [ -n "$(engine_tls_address "$name")" ] && issue_engine_certificates "$name"; then
    stop_one "$name"  # a dockerd still on the previous certificates would refuse the new client certificate
  elif [ -n "$(engine_tls_address "$name")" ] && pid="$(live_engine_pid "$name")" \
      && ! pid_cmdline_has "$pid" "--tlscert=$(engine_tls_dir "$name")/server-cert.pem"; then
    log "$name: dockerd (pid $pid) serves another checkout's certificates; restarting it on these"
    stop_one "$name"  # (a clean clone's setup restarted it on its own CA): it refuses this CA's client certificate
  fi
  if engine_ping "$name"; then
    return 0
  fi

  if pid="$(live_engine_pid "$name")"; then
    log "$name: dockerd (pid $pid) is running but not answering yet; waiting"
  else
    if [ -f "$pf" ]; then
      log "$name: removing stale pid file $pf (no live dockerd)"
      rm -f "$pf"
    fi
    # A containerd pid file left by a killed engine whose pid now belongs to
    # another process would make dockerd skip starting its containerd.
    local cpf="$execroot/containerd/containerd.pid"
    if [ -f "$cpf" ] && ! live_containerd_pid "$name" >/dev/null; then
      log "$name: removing stale containerd pid file $cpf"
      rm -f "$cpf"
    fi
    mkdir -p "$RUN_BASE/$name" "$execroot" "$dataroot" "$LOG_BASE"
    if [ -f "$logf" ] && [ "$(stat -c %s "$logf")" -gt $((20 * 1024 * 1024)) ]; then
      mv -f "$logf" "$logf.1"
    fi
    printf '\n===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "$name" >> "$logf"
    log "$name: starting dockerd ($STORAGE_DRIVER, $(engine_url "$name"), log $logf)"
    # shellcheck disable=SC2046  # listen_flags: words without spaces (paths under the data directory)
    (
      cd /
      exec setsid nohup "$(dockerd_bin)" \
        $(listen_flags "$name") \
        --data-root "$dataroot" \
        --exec-root "$execroot" \
        --pidfile "$pf" \
        --storage-driver="$STORAGE_DRIVER" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/redis-addons/$name" \
        --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --userland-proxy=false \
        --log-level=warn \
        >> "$logf" 2>&1 < /dev/null
    ) &
    disown || true
  fi

  start_ts=$SECONDS
  while ! engine_ping "$name"; do
    if (( SECONDS - start_ts >= TIMEOUT )); then
      printf '[setup] ERROR: %s: dockerd did not answer on %s within %ss. Last lines of %s:\n' \
        "$name" "$(engine_url "$name")" "$TIMEOUT" "$logf" >&2
      tail -n 40 "$logf" >&2 || true
      exit 1
    fi
    if ! live_engine_pid "$name" >/dev/null && (( SECONDS - start_ts >= 3 )) && ! pgrep_child "$name"; then
      printf '[setup] ERROR: %s: dockerd exited during start-up. Last lines of %s:\n' "$name" "$logf" >&2
      tail -n 40 "$logf" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  pid="$(live_engine_pid "$name" || echo '?')"
  cpid="$(live_containerd_pid "$name" || echo '?')"
  log "$name: up after $((SECONDS - start_ts))s (dockerd pid $pid, containerd pid $cpid)"
}

# The dockerd may not have written its pid file yet in the first moments:
# look for a process whose command line names our pid file.
pgrep_child() {
  local pf p
  pf="$(engine_pidfile "$1")"
  for p in /proc/[0-9]*; do
    pid_cmdline_has "${p#/proc/}" "--pidfile $pf" && return 0
  done
  return 1
}

stop_one() {
  local name="$1" pid cpid
  if pid="$(live_engine_pid "$name")"; then
    log "$name: stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do pid_alive "$pid" || break; sleep 0.2; done
    if pid_alive "$pid"; then
      warn "$name: dockerd (pid $pid) still running after 30s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    log "$name: no live dockerd of ours"
    rm -f "$(engine_pidfile "$name")"
  fi
  if cpid="$(live_containerd_pid "$name")"; then
    log "$name: stopping leftover containerd (pid $cpid)"
    kill -TERM "$cpid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$cpid" || break; sleep 0.2; done
  fi
}

status_one() {
  local name="$1" pid
  if engine_ping "$name"; then
    pid="$(live_engine_pid "$name" || echo '?')"
    echo "$name: up ($(engine_url "$name")$([ -n "$(engine_tls_address "$name")" ] && echo ' with mutual TLS'), dockerd pid $pid)"
  else
    echo "$name: down"
  fi
}

cmd="${1:-start}"
[ $# -gt 0 ] && shift
mode="$(engines_mode)"
# host-a/b/c when they are ours, and always the fault tests' own engine (FAULT_ENGINE_NAMES in lib.sh).
names=("${FAULT_ENGINE_NAMES[@]}" "${SCALEOUT_ENGINE_NAMES[@]}")
if [ "$mode" = external ]; then
  case "$cmd" in
    start|status) log "using the existing Docker engine at $EXTERNAL_SOCK for ${ENGINE_NAMES[*]}" ;;
    stop) log "engines are external ($EXTERNAL_SOCK); stopping only ${FAULT_ENGINE_NAMES[*]}" ;;
  esac
  # Debian's docker.io is not installed beside an external engine (it may conflict with Docker CE's packages).
  if ! { [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || command -v dockerd >/dev/null; }; then
    warn "no dockerd here to run ${FAULT_ENGINE_NAMES[*]}: the fault tests (tests/integration/test_docker_engine_down.py, test_engine_sigterm.py) will fail"
    names=()
  fi
else
  names=("${ENGINE_NAMES[@]}" "${FAULT_ENGINE_NAMES[@]}" "${SCALEOUT_ENGINE_NAMES[@]}")
fi
# Names given after the command: only those (the fault tests restart host-d alone).
if [ $# -gt 0 ]; then
  for n in "$@"; do
    [[ " ${names[*]} " == *" $n "* ]] || die "$n is not one of our engines (${names[*]})"
  done
  names=("$@")
fi

[ ${#names[@]} -gt 0 ] || exit 0
case "$cmd" in
  start)
    [ "$(id -u)" = 0 ] || die "starting dockerd needs root"
    check_cgroups
    for n in "${names[@]}"; do start_one "$n"; done
    ;;
  stop)
    for n in "${names[@]}"; do stop_one "$n"; done
    ;;
  status)
    for n in "${names[@]}"; do status_one "$n"; done
    ;;
  *) die "usage: $0 start|stop|status [ENGINE...]" ;;
esac
