#!/usr/bin/env bash
# The dashboard's chart library, uPlot, from the npm registry (the pinned version below, with npm), copied
# into the directory the dashboard serves it from. The engine never fetches anything at run time: without
# these files its Overview says the charts are missing. Fast when the pinned version is already there.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UPLOT_VERSION=1.6.32
dest="$REPO_ROOT/adapters/http/dashboard/static/vendor/uplot"
stamp="$dest/VERSION"
files=(dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE)

if [ "$(cat "$stamp" 2>/dev/null)" = "$UPLOT_VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || die "npm not found: scripts/install-packages.sh installs Debian's npm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching uPlot $UPLOT_VERSION for the dashboard (npm pack uplot@$UPLOT_VERSION)"
# npm pack: the package's tarball alone (no install scripts run, nothing else fetched)
tarball="$(cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work"
mkdir -p "$dest"
for f in "${files[@]}"; do
  [ -f "$work/package/$f" ] || die "uplot@$UPLOT_VERSION has no $f"
  cp "$work/package/$f" "$dest/"
done
echo "$UPLOT_VERSION" > "$stamp"
