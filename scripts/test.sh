#!/usr/bin/env bash
# Lint, then run every test. The tests start the local services they need (Postgres, the TLC
# server, the GCS and BigQuery stand-ins) on free loopback ports, apart from the demo's stack.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k months
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser
# The stack test runs docker-compose.yaml: a Docker engine (installed and started when missing).
scripts/docker-engine.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
