#!/usr/bin/env bash
# Run the flows on this machine for sample months and print what landed where.
# Installs what is missing, starts the local stack (Postgres, the TLC stand-in, the GCS and BigQuery
# stand-ins) and runs each DAG with `airflow dags test`, the code path a scheduled run takes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python -m local_stack up
# shellcheck disable=SC1091
source .state/stack.env
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p .state/logs
airflow db migrate >.state/logs/db-migrate.log 2>&1
airflow pools import config/pools.json >>.state/logs/db-migrate.log 2>&1

run_dag() {
  local dag_id=$1 conf=$2 log
  log=".state/logs/${dag_id}-$(date +%Y%m%dT%H%M%S).log"
  printf '▶ airflow dags test %s -c %s ... ' "$dag_id" "$conf"
  # -f: the DAG's own file is parsed first, not every file of dags/ (an absolute path).
  if airflow dags test "$dag_id" -f "$PWD/dags/$dag_id.py" -c "$conf" >"$log" 2>&1; then
    echo "ok (log: $log)"
    # What a learner looks for in the task logs: rows per cleaning rule, unreadable rows, anomalies.
    grep -aoE "(read [0-9]+ rows, kept[^[]*|set aside [0-9]+ unreadable[^[]*|(No )?anomaly in [^[]*|Published [0-9]+ rows[^[]*|chart written to [^[]*)" "$log" \
      | sed 's/ *$//; s/^/    /' | sort -u || true
  else
    echo "FAILED; the end of $log:"; tail -n 40 "$log"; exit 1
  fi
}

# Every family of two months from the course's CSV mirror (the stand-in serves the real samples and
# constructed months around them: data/tlc/README.md and .state/tlc/CONSTRUCTED.md say which).
for month in 2020-10 2021-01; do
  run_dag taxi_api_to_postgres "{\"month\": \"$month\"}"
  run_dag taxi_api_to_gcs "{\"month\": \"$month\"}"
  run_dag taxi_gcs_to_bigquery "{\"month\": \"$month\"}"
done
run_dag taxi_daily_trips_to_gcs '{"day": "2021-01-01"}'
# The course's pipeline, for the month of the real green sample (on the real mirror: the default Q4).
run_dag green_taxi_etl '{"year": 2020, "months": [10]}'
# The TLC's own Parquet: the real green file of January 2024 into the same tables as the CSV months,
# and the High-Volume FHV family, which only the TLC publishes (a constructed sample, data/tlc/README.md).
AIRFLOW_VAR_TAXI_SOURCE=tlc AIRFLOW_VAR_TAXI_FIRST_MONTH=2024-01 AIRFLOW_VAR_TAXI_LAST_MONTH=2024-01 \
  run_dag taxi_api_to_postgres '{"taxis": ["green", "fhvhv"], "month": "2024-01"}'
# The dbt models over every month loaded (docs/dbt.md): each model and its tests are tasks.
run_dag taxi_warehouse_models '{"months": []}'

echo
python -m local_stack report
