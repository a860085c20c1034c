#!/usr/bin/env bash
# Install the Debian packages the project needs; a no-op when all are present.
# Services the packages ship (redis-server, docker) are kept from starting:
# we run our own engines and our own Redis containers.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd)"
command -v apt-get >/dev/null || die "this setup expects a Debian/Ubuntu machine (apt-get not found)"

mode="$(engines_mode)"
# redis-server: the 7.0.15 binary for the image, and redis-cli; redis-tools: redis-cli, redis-benchmark
# haproxy: cluster front end; python3 + python3-venv: the scripts and `python3 -m venv`
# python3-minimal + python3-redis: the demo app image (scripts/build-demo-app.py copies their files)
pkgs=(redis-server redis-tools haproxy python3 python3-venv ca-certificates python3-minimal python3-redis)
if [ "$mode" = local ]; then
  # docker.io brings dockerd, containerd, runc, tini (docker-init) and the docker CLI
  pkgs+=(docker.io)
elif ! command -v docker >/dev/null; then
  die "an external Docker engine answers on $EXTERNAL_SOCK but no docker CLI is installed"
fi

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done

had_docker_io=0
installed docker.io && had_docker_io=1

systemd_running() { [ -d /run/systemd/system ]; }

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  # Keep maintainer scripts from starting services (the standard Debian hook).
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from redis-addons scripts/install-packages.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  cleanup() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT

  export DEBIAN_FRONTEND=noninteractive
  need_update=0
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    need_update=1
  else
    for p in "${missing[@]}"; do
      if ! apt-cache show "$p" >/dev/null 2>&1; then need_update=1; break; fi
    done
  fi
  if [ "$need_update" = 1 ]; then
    log "apt-get update"
    apt-get update -q
  fi
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    log "install failed; refreshing package lists and retrying once"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  cleanup
  trap - EXIT

  if [ "$mode" = local ] && [ "$had_docker_io" = 0 ]; then
    mkdir -p "$DATA_BASE"
    date -u +%FT%TZ > "$DOCKER_IO_MARKER"
  fi
fi

# Debian's own services: we don't want them running (redis on :6379, dockerd on /var/run/docker.sock).
if systemd_running; then
  for unit in redis-server.service; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      log "disabling and stopping Debian's $unit"
      systemctl disable --now "$unit" >/dev/null 2>&1 || warn "could not disable $unit"
    fi
  done
  if [ -e "$DOCKER_IO_MARKER" ]; then
    for unit in docker.service docker.socket; do
      if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
        log "disabling and stopping Debian's $unit (we run our own engines)"
        systemctl disable --now "$unit" >/dev/null 2>&1 || warn "could not disable $unit"
      fi
    done
  fi
else
  # No systemd: an init script may have started it; stop it by its pid file only.
  pf=/run/redis/redis-server.pid
  if [ -f "$pf" ]; then
    pid="$(cat "$pf" 2>/dev/null || true)"
    if pid_cmdline_has "$pid" redis-server; then
      log "stopping Debian's redis-server service (pid $pid from $pf)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  if command -v update-rc.d >/dev/null && [ -e /etc/init.d/redis-server ] \
     && ls /etc/rc2.d/S*redis-server >/dev/null 2>&1; then
    update-rc.d redis-server disable >/dev/null 2>&1 || true
  fi
  if [ -e "$DOCKER_IO_MARKER" ]; then
    pf=/var/run/docker.pid
    if [ -f "$pf" ]; then
      pid="$(cat "$pf" 2>/dev/null || true)"
      if pid_cmdline_has "$pid" dockerd && ! pid_cmdline_has "$pid" "$RUN_BASE/"; then
        log "stopping Debian's docker service (pid $pid from $pf; we run our own engines)"
        kill -TERM "$pid" 2>/dev/null || true
      fi
    fi
    if command -v update-rc.d >/dev/null && [ -e /etc/init.d/docker ] \
       && ls /etc/rc2.d/S*docker >/dev/null 2>&1; then
      update-rc.d docker disable >/dev/null 2>&1 || true
    fi
  fi
fi

v="$(/usr/bin/redis-server --version 2>/dev/null || true)"
case "$v" in
  *v=7.0.15*) ;;
  *) warn "Debian redis-server is not 7.0.15 ($v); the 7.0.15 image will not be built" ;;
esac
