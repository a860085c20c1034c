#!/usr/bin/env bash
# Remove the containers this project created (label redis-addons.addon, and
# leftover smoke-test containers, label redis-addons.smoke) on every engine.
# Volumes are kept.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A done_urls=()
while read -r name url; do
  [ -n "${done_urls[$url]:-}" ] && continue
  done_urls[$url]=1
  if ! { [[ "$url" == tcp://* ]] && engine_ping "$name" || docker_ping "${url#unix://}"; }; then
    log "$name: engine not running ($url); nothing to clean"
    continue
  fi
  for label in redis-addons.addon redis-addons.smoke; do
    ids="$(docker_cli "$name" "$url" ps -aq --filter "label=$label")"
    if [ -n "$ids" ]; then
      log "$name: removing $(echo "$ids" | wc -l) container(s) labelled $label"
      # shellcheck disable=SC2086
      docker_cli "$name" "$url" rm -f $ids >/dev/null
    fi
  done
done < <(engine_urls; for n in "${FAULT_ENGINE_NAMES[@]}" "${SCALEOUT_ENGINE_NAMES[@]}"; do echo "$n $(engine_url "$n")"; done)  # and host-d..g
