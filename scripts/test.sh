#!/usr/bin/env bash
# Lint, then run every test. The tests start the local services they need (Postgres, the TLC
# server, the GCS and BigQuery stand-ins) on free loopback ports, apart from the demo's stack.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k months
# scripts/test.sh --quick is the edit loop's tier: lint, the unit tests and the DAG integrity tests,
# no service started, in two processes (59 s warm on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--quick" ]; then
  shift
  scripts/bootstrap.sh
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  exec .venv/bin/pytest -q -n 2 tests/unit tests/dags "$@"
fi
scripts/bootstrap.sh --browser
# The stack test runs docker-compose.yaml: a Docker engine (installed and started when missing).
scripts/docker-engine.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
# Every test, in two lanes at once: most of the time of the Docker stack and of the real
# scheduler is spent waiting on their services, so the other tests run meanwhile, themselves in
# two processes (pytest-xdist, a test file per process at a time), so neither core idles once the
# first lane is done. Each lane has its own pytest folder; the second's output follows. Each lane
# lists its slowest tests, so a CI log shows where its time goes.
lanes=.state/pytest
rm -rf "$lanes" && mkdir -p "$lanes"
.venv/bin/pytest -m "stack or scheduler" --durations=15 --basetemp="$lanes/services" >"$lanes/services.log" 2>&1 &
services=$!
status=0
.venv/bin/pytest -m "not (stack or scheduler)" -n 2 --dist loadfile --durations=40 --basetemp="$lanes/others" \
  || status=$?
services_status=0
wait "$services" || services_status=$?
echo "=== the Docker stack and the scheduler (pytest -m 'stack or scheduler') ==="
cat "$lanes/services.log"
echo "exit status: every other test $status; the stack and the scheduler $services_status"
[ "$status" -eq 0 ] && [ "$services_status" -eq 0 ]
