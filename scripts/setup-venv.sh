#!/usr/bin/env bash
# Create .venv and install the project (editable, with test extras).
# Skipped when .venv/bin/redis-addons exists and pyproject.toml is not newer
# than the stamp written after the last successful install.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

venv=.venv
stamp="$venv/.redis-addons-installed"

if [ -x "$venv/bin/redis-addons" ] && [ -x "$venv/bin/pytest" ] && [ -f "$stamp" ] \
   && [ ! pyproject.toml -nt "$stamp" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "creating $venv"
  if [ -e "$venv" ]; then python3 -m venv --clear "$venv"; else python3 -m venv "$venv"; fi
fi
log "installing the project into $venv (pip install -e '.[test]')"
# (this machine's pip config names local indexes that may not exist: drop those warnings)
"$venv/bin/pip" install -q -e '.[test]' \
  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
touch "$stamp"
