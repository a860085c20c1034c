#!/usr/bin/env bash
# Everything `make setup` does, in order; each step is idempotent and fast when
# there is nothing to do.
#   1. Debian packages           scripts/install-packages.sh (lists refreshed when older than 3 h,
#                                what the images are made of upgraded to its newest update)
#   1b. Debian root filesystems  scripts/debian_roots.py (trixie, bookworm-backports: made once with
#                                debootstrap, their lists and packages kept like the host's)
#   2. .venv with the project    scripts/setup-venv.sh
#   2b. the dashboard's uPlot    scripts/fetch-uplot.sh (npm pack of the pinned version, into its static files)
#   3. engines host-a/b/c, and host-d (the fault tests stop and start it)   scripts/engines.sh start
#      and host-e/f/g (the second test stream's; host-g over TCP with mutual TLS, its certificates issued by
#      the .venv's `redis-addons host-certificates`: hence after step 2)
#   4. $REDIS_ADDONS_HOME/hosts.json (and fault-hosts.json: host-d)   scripts/write-hosts.sh
#   5. engine images             scripts/build-images.py (rebuilt when a recorded package version changed)
#   6. demo app image            scripts/build-demo-app.py (examples/demo_app)
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
. "$here/lib.sh"
cd "$REPO_ROOT"

t0=$SECONDS
"$here/install-packages.sh"
python3 "$here/debian_roots.py"
"$here/setup-venv.sh"
"$here/fetch-uplot.sh"
"$here/engines.sh" start
"$here/write-hosts.sh"
python3 "$here/build-images.py"
python3 "$here/build-demo-app.py"
log "ready in $((SECONDS - t0))s: $(engines_mode) engines, hosts in $ADDONS_HOME/hosts.json"
