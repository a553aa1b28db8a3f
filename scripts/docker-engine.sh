#!/usr/bin/env bash
# A Docker engine for the stack test (tests/deploy/test_stack.py): installs Debian's docker.io,
# debootstrap and python3-venv (which build the stand-in images) when missing, and starts dockerd
# when no engine answers, logging to .state/logs/dockerd.log. An engine that runs is used as it is.
# scripts/test.sh calls it; Docker Compose v2 itself is pinned in requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# The stand-ins' wheels are resolved with Debian's Python, the one inside the images.
/usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} with apt..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "Starting dockerd (log: .state/logs/dockerd.log)..."
  mkdir -p .state/logs
  as_root nohup dockerd >.state/logs/dockerd.log 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; the end of its log:" >&2; tail -20 .state/logs/dockerd.log >&2; exit 1; }
fi
