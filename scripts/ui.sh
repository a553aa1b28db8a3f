#!/usr/bin/env bash
# Start the Airflow web UI on http://127.0.0.1:8080 against the local stack the demo uses, in the
# background; `scripts/ui.sh stop` stops it. Log in as admin with the password in
# LOCAL_AIRFLOW_PASSWORD (default: admin). The login is for this machine only: the UI listens on
# loopback. LOCAL_AIRFLOW_PORT picks another port.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "stop" ]; then
  exec .venv/bin/python -m local_stack ui-stop
fi
scripts/bootstrap.sh
.venv/bin/python -m local_stack up
exec .venv/bin/python -m local_stack ui
