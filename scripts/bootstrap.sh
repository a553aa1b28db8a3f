#!/usr/bin/env bash
# Install what the local stack and the tests run on: the PostgreSQL server binaries (apt), with
# --browser also Chromium and its chromedriver for the browser test, and the Python environment in
# .venv (pip, from the pinned requirements). Quick when nothing changed; scripts/demo.sh,
# scripts/ui.sh and scripts/test.sh (with --browser) call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  apt_packages+=(postgresql)
fi
# The browser test (tests/e2e) drives Debian's Chromium through Debian's chromedriver.
if [ "${1:-}" = "--browser" ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  apt_packages+=(chromium chromium-driver)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "Installing ${apt_packages[*]} with apt..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

python=${PYTHON:-python3}
# The pinned pandas, numpy, pyarrow, matplotlib, ADBC and providers require Python 3.11 or newer
# (pyproject.toml's requires-python says the same).
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python 3.11 or newer is needed (found $("$python" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi

# install_venv FOLDER WHAT REQUIREMENTS [HASHED...]: a virtualenv installed from REQUIREMENTS,
# reinstalled only when one of the hashed files (REQUIREMENTS by default) changed since.
install_venv() {
  local folder=$1 what=$2 requirements=$3 stamp
  shift 3
  stamp=$(cat "${@:-$requirements}" | sha256sum | cut -c1-16)
  if [ "$(cat "$folder/.installed" 2>/dev/null)" != "$stamp" ]; then
    echo "Installing $what into $folder (a few minutes the first time)..."
    "$python" -m venv "$folder"
    "$folder/bin/pip" install -qq --upgrade pip
    "$folder/bin/pip" install -qq -r "$requirements"
    echo "$stamp" > "$folder/.installed"
  fi
}

install_venv .venv "the Python environment" requirements-dev.txt requirements.txt requirements-dev.txt
# dbt and its adapters live in their own environment too (requirements-dbt.txt says why); the DAG
# that runs the models reads the project's manifest, made here by `dbt parse`, never dbt itself.
install_venv .venv-dbt "dbt" requirements-dbt.txt
scripts/dbt-parse.sh
# The local GCS and BigQuery stand-ins live in their own environment, apart from Airflow's.
install_venv .venv-emulators "the GCS and BigQuery stand-ins" requirements-emulators.txt
