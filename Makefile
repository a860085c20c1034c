SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Data directory of the control plane (hosts.json, build cache); git-ignored.
export REDIS_ADDONS_HOME ?= $(CURDIR)/var

VENV := .venv
PY   := $(VENV)/bin/python

.PHONY: setup run test bench demo smoke engines-status stop-engines clean

## setup: Debian packages, .venv, engines host-a/host-b/host-c (+ host-d, the fault tests', and host-e/f/g, the second test stream's), var/hosts.json, engine images (idempotent)
setup:
	@scripts/setup.sh

## run: start the control plane
run: setup
	$(VENV)/bin/redis-addons serve

## test: the test suite on three workers: the tests on the Docker hosts as two streams, one per worker, each in order
## on engines of its own (tests/conftest.py's scheduler); the third runs the unit, scenario and PostgreSQL-only
## tests meanwhile, at a lower CPU priority (nice 10): the streams' tests time failovers and replication
## (pytest's own exit code, 5 = none collected)
test: setup
	$(VENV)/bin/pytest -q -n 3

## bench: every bench/*.py but bench/common.py (what they share)
bench: setup
	@shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no bench/*.py"; exit 0; fi; \
	for f in "$${files[@]}"; do [ "$$f" = bench/common.py ] && continue; echo "== $$f"; $(PY) "$$f"; done

## demo: examples/embedded.py
demo: setup
	$(PY) examples/embedded.py

## smoke: run every image on every engine (PING on loopback, --memory in the cgroup)
smoke: setup
	@python3 scripts/build-images.py --smoke-all

## engines-status: host-a/b/c, host-d (fault tests) and host-e/f/g (second test stream): up (with the dockerd pid) or down
engines-status:
	@scripts/engines.sh status

## stop-engines: stop the dockerd we started (by their pid files)
stop-engines:
	@scripts/engines.sh stop

## clean: remove containers labelled redis-addons.addon (and smoke-test leftovers) on every engine
clean:
	@scripts/clean-containers.sh
