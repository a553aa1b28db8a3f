#!/usr/bin/env bash
# Run the flows on this machine for the sample months and print what landed where.
# Installs what is missing, starts the local stack (Postgres, the TLC server) and runs each DAG
# once with `airflow dags test`, the same code path a scheduled run takes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python -m local_stack up
# shellcheck disable=SC1091
source .state/stack.env
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p .state/logs
airflow db migrate >.state/logs/db-migrate.log 2>&1

run_dag() {
  local dag_id=$1 conf=$2 log
  log=".state/logs/${dag_id}-$(date +%Y%m%dT%H%M%S).log"
  printf '▶ airflow dags test %s -c %s ... ' "$dag_id" "$conf"
  if airflow dags test "$dag_id" -c "$conf" >"$log" 2>&1; then
    echo "ok (log: $log)"
  else
    echo "FAILED; the end of $log:"; tail -n 40 "$log"; exit 1
  fi
}

run_dag taxi_api_to_postgres '{"taxi": "yellow", "month": "2021-01"}'
run_dag taxi_api_to_postgres '{"taxi": "green", "month": "2020-10"}'

echo
python -m local_stack report
