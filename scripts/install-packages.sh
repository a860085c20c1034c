#!/usr/bin/env bash
# Install the Debian packages the project needs, and keep those the images are made of on their
# newest (security) updates, so that scripts/build-images.py rebuilds the images from them:
#   1. the package lists are refreshed when the setup's last complete `apt-get update` is older
#      than APT_MAX_AGE (3 h, REDIS_ADDONS_APT_MAX_AGE), or a source was changed since;
#   2. missing packages are installed;
#   3. the packages the images are made of (and every library they use) are upgraded to the
#      newest version the lists offer, when the lists or the installed packages changed since.
# With nothing to do it only stats a few files: a second `make setup` stays fast.
# Services the packages ship (redis-server, docker) are kept from starting:
# we run our own engines and our own Redis containers.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd)"
command -v apt-get >/dev/null || die "this setup expects a Debian/Ubuntu machine (apt-get not found)"
export DEBIAN_FRONTEND=noninteractive
APT_LOCK_WAIT=(-o DPkg::Lock::Timeout=300)  # another apt run (a second make setup) is waited for

mode="$(engines_mode)"
# redis-server: the 7.0.15 binary for the image, and redis-cli; redis-tools: redis-cli, redis-benchmark
# haproxy, redis-sentinel: the cluster components' images (scripts/component_images.py copies their files)
# python3 + python3-venv: the scripts and `python3 -m venv`
# python3-minimal + python3-redis: the demo app image (scripts/build-demo-app.py copies their files)
# debootstrap: the trixie and bookworm-backports root filesystems Valkey 8 and Redis 8 are built from
#   (scripts/debian_roots.py): their binaries need their own release's libraries
# prometheus: the /metrics test scrapes the engine with a real server, started by the test (its service is held)
# postgresql: the tests and bench/scale.py run a throwaway server of their own (tests/postgres_server.py),
#   in a temporary directory on a loopback port; the package's own cluster service is held like the others
# chromium + chromium-driver: the dashboard's tests drive a real headless browser (tests/integration/test_dashboard.py)
pkgs=(redis-server redis-tools redis-sentinel haproxy python3 python3-venv ca-certificates python3-minimal python3-redis
      debootstrap prometheus chromium chromium-driver postgresql)
# npm: scripts/fetch-uplot.sh fetches the dashboard's chart library (uPlot) from the npm registry; Debian's
# package only where no npm is installed (a Node.js from elsewhere, e.g. NodeSource's, brings its own)
command -v npm >/dev/null || pkgs+=(npm)
if [ "$mode" = local ]; then
  # docker.io brings dockerd, containerd, runc, tini (docker-init) and the docker CLI
  pkgs+=(docker.io)
elif ! command -v docker >/dev/null; then
  die "an external Docker engine answers on $EXTERNAL_SOCK but no docker CLI is installed"
fi
# What the images are made of: the engine images' files come from redis-tools (redis-server's
# binary is its redis-check-rdb, and redis-cli) and the libraries they link; the wheels' servers
# link glibc only; the Sentinel image's from redis-sentinel (a symlink to that same binary) and
# redis-tools; the HAProxy image's from haproxy; the demo app's from python3.11 and python3-redis.
# Their dependencies, recursively, include every library the images copy (libc6, libssl3, liblua5.3-0...).
image_roots=(redis-server redis-tools redis-sentinel haproxy python3-minimal python3-redis)

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
systemd_running() { [ -d /run/systemd/system ]; }

# Maintainer scripts must not start services while we install or upgrade (the standard Debian hook).
created_policy=0
hold_services() {
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from redis-addons scripts/install-packages.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
}
release_services() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; created_policy=0; fi; }
trap release_services EXIT

# 1. package lists -----------------------------------------------------------------------
lists_fresh() {
  [ -f "$APT_STAMP" ] || return 1
  [ $(( $(date +%s) - $(stat -c %Y "$APT_STAMP") )) -lt "$APT_MAX_AGE" ] || return 1
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/sources.list.d/*; do
    if [ -e "$f" ] && [ "$f" -nt "$APT_STAMP" ]; then return 1; fi  # a source added or changed since
  done
}

refresh_lists() {
  local started last
  started=$(date +%s)
  if [ -f "$APT_STAMP" ]; then last="$(( (started - $(stat -c %Y "$APT_STAMP")) / 60 )) min ago"; else last=never; fi
  log "refreshing the package lists (last complete refresh by the setup: $last; limit $((APT_MAX_AGE / 60)) min): apt-get update"
  # Error-Mode=any: a source that could not be fetched (the security archive...) is a failure, not a warning.
  if ! apt-get update -q -o APT::Update::Error-Mode=any "${APT_LOCK_WAIT[@]}"; then
    die "apt-get update failed (see above): the images are never built from package lists older than" \
        "$((APT_MAX_AGE / 60)) min, lest a security update be missed; fix the network or the apt sources," \
        "or accept older lists with REDIS_ADDONS_APT_MAX_AGE=SECONDS"
  fi
  mkdir -p "$DATA_BASE"
  touch -d "@$started" "$APT_STAMP"  # when the lists were asked for, not when the slowest arrived
}

lists_fresh || refresh_lists

# 2. missing packages --------------------------------------------------------------------
missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done

had_docker_io=0
installed docker.io && had_docker_io=1

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  hold_services
  if ! apt-get install -y -q --no-install-recommends "${APT_LOCK_WAIT[@]}" "${missing[@]}"; then
    log "install failed; refreshing package lists (the mirror may have moved on) and retrying once"
    refresh_lists
    apt-get install -y -q --no-install-recommends "${APT_LOCK_WAIT[@]}" "${missing[@]}"
  fi
  release_services

  if [ "$mode" = local ] && [ "$had_docker_io" = 0 ]; then
    mkdir -p "$DATA_BASE"
    date -u +%FT%TZ > "$DOCKER_IO_MARKER"
  fi
fi

# 3. what the images are made of, on its newest version --------------------------------
upgrade_due() {
  [ -f "$UPGRADE_STAMP" ] || return 0
  # lists refreshed (by us or anyone: files renamed into the directory), or packages installed since
  for f in "$APT_STAMP" /var/lib/apt/lists /var/lib/dpkg/status; do
    if [ "$f" -nt "$UPGRADE_STAMP" ]; then return 0; fi
  done
  return 1
}

image_packages() {
  apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${image_roots[@]}" | grep -v '^[ <]' | sort -u \
    | xargs dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' 2>/dev/null | awk '$1 == "ii" { print $2 }'
}

if upgrade_due; then
  mapfile -t image_pkgs < <(image_packages)
  [ "${#image_pkgs[@]}" -gt 0 ] || die "none of ${image_roots[*]} is installed: cannot upgrade what the images are made of"
  # "Inst libssl3 [3.0.19-1~deb12u2] (3.0.20-1~deb12u2 Debian-Security:12/stable-security [amd64])"
  plan="$(apt-get -s -o Debug::NoLocking=1 install --only-upgrade --no-install-recommends "${image_pkgs[@]}" \
          | sed -nE -e 's/^Inst ([^ ]+) \[([^]]*)\] \(([^ ]+).*/\1 \2 -> \3/p' -e 's/^Inst ([^ ]+) \(([^ ]+).*/\1 (new) \2/p')"
  if [ -n "$plan" ]; then
    log "upgrading what the images are made of: $(paste -sd ';' <<<"$plan" | sed 's/;/, /g')"
    hold_services
    # --no-remove: an upgrade that would remove a package stops here instead
    apt-get install -y -q --only-upgrade --no-install-recommends --no-remove "${APT_LOCK_WAIT[@]}" "${image_pkgs[@]}"
    release_services
  fi
  mkdir -p "$DATA_BASE"
  touch "$UPGRADE_STAMP"
fi

# Debian's own services: we don't want them running (redis on :6379, sentinel on :26379, haproxy,
# dockerd on /var/run/docker.sock).
if systemd_running; then
  for unit in redis-server.service redis-sentinel.service haproxy.service; do
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
  # Their boot-time links too: after a reboot with a traditional init they would start (Debian's
  # Sentinel on 26379, its HAProxy on its default config) beside nothing of ours.
  for service in redis-server redis-sentinel haproxy; do
    if command -v update-rc.d >/dev/null && [ -e "/etc/init.d/$service" ] \
       && ls /etc/rc2.d/S*"$service" >/dev/null 2>&1; then
      update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
  done
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
