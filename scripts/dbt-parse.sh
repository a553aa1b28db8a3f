#!/usr/bin/env bash
# Write the dbt project's manifest (include/dbt/target/manifest.json), which the DAG
# taxi_warehouse_models renders its tasks from: dbt never runs while Airflow parses the DAG folder.
# No connection is made; the profile's values come from the environment (include/dbt/profiles.yml).
# Usage: scripts/dbt-parse.sh [DBT_EXECUTABLE]   (default: .venv-dbt/bin/dbt)
set -euo pipefail
cd "$(dirname "$0")/../include/dbt"
dbt=${1:-../../.venv-dbt/bin/dbt}
"$dbt" parse --quiet --profiles-dir . --target postgres --no-send-anonymous-usage-stats
echo "dbt manifest: include/dbt/target/manifest.json"
