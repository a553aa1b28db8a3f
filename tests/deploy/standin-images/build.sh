#!/usr/bin/env bash
# Builds the stand-ins for the upstream images that Dockerfile, docker-compose.yaml and
# local_stack/emulators.Dockerfile name (README.md beside this script says why):
#
#   apache/airflow:<version in requirements.txt>   postgres:16   redis:7.2-bookworm   python:3.11-slim
#
# from a Debian bookworm root filesystem (debootstrap), Debian's packages (apt over plain HTTP inside
# the build) and wheels that this host downloads and builds with pip, since containers here cannot
# verify HTTPS to the package index. Every image is labelled with a hash of its inputs; an image
# whose label matches is not built again, and the root filesystem and the wheels are kept under
# .state/standin-images (git-ignored) by the same hashes.
#
#   tests/deploy/standin-images/build.sh           # build what changed
#   tests/deploy/standin-images/build.sh --force   # rebuild every image
#
# Needs a running Docker engine, debootstrap and Debian's python3-venv (the images' Python, so the
# wheels fit their interpreter): scripts/docker-engine.sh installs them. Never run it where the
# real images can be pulled: it would shadow them under their own names.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${STANDIN_CACHE:-$repo/.state/standin-images}
force=${1:-}

# The Airflow version is the one requirements.txt pins (and Dockerfile's ARG, tests/deploy checks).
airflow_version=$(sed -n 's/^apache-airflow==\([^ ]*\)$/\1/p' "$repo/requirements.txt")
[ -n "$airflow_version" ] || { echo "no apache-airflow==X pin in requirements.txt" >&2; exit 1; }
# What the real image installs for what this project runs (the official image has more extras:
# README.md). Resolved as of the release of apache-airflow 3.3.2 on PyPI, as the image's
# constraints file was, so the providers are the versions the real image shipped.
airflow_extras=celery,common-io,common-sql,fab,google,http,openlineage,pandas,postgres,redis,smtp,standard,statsd
airflow_released=2026-09-17T09:00:00Z
pip_version=26.3          # the pip that builds the wheels here (needs --uploaded-prior-to)
image_pip_version=26.1.2  # the pip the official image ships
debian_mirror=http://deb.debian.org/debian
label=org.nyc-taxi.standin.inputs

export DOCKER_BUILDKIT=0  # the classic builder: Debian's engine has no buildx plugin to pair with
mkdir -p "$cache"
log() { printf '[standin %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
hash_text() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

docker info >/dev/null 2>&1 || { echo "no Docker engine answers (scripts/docker-engine.sh starts one)" >&2; exit 1; }

# pip on this host, pinned, in a venv of Debian bookworm's own Python (3.11.2): the images'
# interpreter, so that pip evaluates markers such as python_full_version < "3.11.3" as they will.
debian_python=/usr/bin/python3.11
tools=$cache/tools-pip-$pip_version
if [ ! -f "$tools/.complete" ]; then
  "$debian_python" -c 'import ensurepip' 2>/dev/null \
    || { echo "Debian's $debian_python with venv is needed (apt-get install python3-venv)" >&2; exit 1; }
  rm -rf "$tools" && "$debian_python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q "pip==$pip_version" 2>&1 | grep -v "is ignored: it is neither a file" >&2 || true
  touch "$tools/.complete"
fi
resolver="pip $pip_version on $("$tools/bin/python" --version), index only"
# pip against the package index alone: a machine's extra indexes and find-links folders serve
# files without upload dates, which --uploaded-prior-to cannot judge (PIP_CERT and PIP_INDEX_URL
# still apply).
pip_index_only() {
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
    "$tools/bin/python" -m pip "$@"
}

# wheels NAME HASH PIP-ARGS...: a folder of wheels for one resolution, built once per hash.
wheels() {
  local dir=$cache/wheels/$1-$2
  shift 2
  if [ ! -f "$dir/.complete" ]; then
    log "wheels: pip wheel $*"
    rm -rf "$dir" && mkdir -p "$dir"
    if ! pip_index_only wheel -q --wheel-dir "$dir" "$@" 2>"$dir.log"; then
      grep -v "is ignored: it is neither a file" "$dir.log" >&2
      exit 1
    fi
    touch "$dir/.complete"
  fi
  printf '%s' "$dir"
}

# The classic builder warns that it is deprecated on every build; the rest of stderr matters.
quiet_builder() { grep -v -e 'legacy builder is deprecated' -e 'BuildKit is currently disabled' -e 'environment-variable\.' -e '^$' || true; }

# image NAME HASH CONTEXT: docker build unless NAME already carries HASH.
built() { [ "$force" != --force ] && [ "$(docker image inspect "$1" --format "{{ index .Config.Labels \"$label\" }}" 2>/dev/null)" = "$2" ]; }
image() {
  local name=$1 inputs=$2 context=$3 started=$SECONDS
  log "building $name"
  docker build -q --rm --force-rm --label "$label=$inputs" -t "$name" "$context" 2>&1 >/dev/null | quiet_builder >&2
  log "built $name in $((SECONDS - started)) s"
}

# A build context: the image's folder plus hard links to the wheels it installs.
context() {
  local dir=$cache/context-$1
  rm -rf "$dir" && cp -r "$here/$1" "$dir"
  shift
  while [ $# -gt 0 ]; do cp -al "$2" "$dir/$1"; shift 2; done
  printf '%s' "$dir"
}

# debootstrap mounts /proc and /sys in the tree; a failed run can leave them there.
unmount_rootfs() {
  awk -v root="$cache/rootfs/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
}

# --- the base: Debian bookworm, minbase ---------------------------------------------------------
base=nyc-taxi-standin/debian:bookworm
base_hash=$(hash_text "minbase bookworm $debian_mirror passwd")
if ! built "$base" "$base_hash"; then
  rootfs=$cache/rootfs-$base_hash.tar
  if [ ! -f "$rootfs" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is needed (apt-get install debootstrap)" >&2; exit 1; }
    log "debootstrap bookworm"
    unmount_rootfs
    rm -rf --one-file-system "$cache/rootfs" && mkdir -p "$cache/rootfs"
    debootstrap --variant=minbase --include=passwd bookworm "$cache/rootfs" "$debian_mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$debian_mirror" "$debian_mirror" \
      >"$cache/rootfs/etc/apt/sources.list"
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb "$cache/rootfs/var/lib/apt/lists/"*
    unmount_rootfs
    tar -C "$cache/rootfs" -cf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
    rm -rf --one-file-system "$cache/rootfs"
  fi
  log "importing $base"
  docker import --change "LABEL $label=$base_hash" --change 'CMD ["/bin/bash"]' "$rootfs" "$base" >/dev/null
fi

# Every image below is FROM the base, so its hash includes the base's.
folder_hash() { (cd "$here/$1" && find . -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16; }

# --- postgres:16 and redis:7.2-bookworm: Debian's PostgreSQL 15 and Redis 7.0 ---------------------
for spec in postgres:postgres:16 redis:redis:7.2-bookworm; do
  folder=${spec%%:*} name=${spec#*:}
  inputs=$(hash_text "$base_hash" "$(folder_hash "$folder")")
  built "$name" "$inputs" || image "$name" "$inputs" "$(context "$folder")"
done

# --- python:3.11-slim: Debian's Python 3.11 in a venv on PATH, pip offline on a wheelhouse ---------
emulator_pins=$(hash_text "$resolver" "$(hash_of "$repo/requirements-emulators.txt")")
inputs=$(hash_text "$base_hash" "$(folder_hash python)" "$emulator_pins")
if ! built python:3.11-slim "$inputs"; then
  emulator_wheels=$(wheels emulators "$emulator_pins" -r "$repo/requirements-emulators.txt" "pip==$image_pip_version")
  image python:3.11-slim "$inputs" "$(context python wheels "$emulator_wheels")"
fi

# --- apache/airflow:<version> ---------------------------------------------------------------------
# Airflow as the real image has it, and (offline, through /etc/pip.conf) the wheels that
# Dockerfile's `pip install apache-airflow==<version> -r requirements.txt` asks for.
airflow_spec="apache-airflow[$airflow_extras]==$airflow_version"
airflow_pins=$(hash_text "$resolver" "$airflow_spec" "$airflow_released" "$image_pip_version")
project_pins=$(hash_text "$resolver" "$airflow_version" "$(hash_of "$repo/requirements.txt" "$repo/requirements-dbt.txt")")
inputs=$(hash_text "$base_hash" "$(folder_hash airflow)" "$airflow_pins" "$project_pins")
if ! built "apache/airflow:$airflow_version" "$inputs"; then
  airflow_wheels=$(wheels airflow "$airflow_pins" --uploaded-prior-to "$airflow_released" "$airflow_spec" "pip==$image_pip_version")
  project_wheels=$(wheels project "$project_pins" "apache-airflow==$airflow_version" -r "$repo/requirements.txt")
  # Dockerfile's dbt environment (requirements-dbt.txt), resolved on its own as it is installed.
  dbt_wheels=$(wheels dbt "$project_pins" -r "$repo/requirements-dbt.txt")
  ctx=$(context airflow airflow-wheels "$airflow_wheels" project-wheels "$project_wheels" dbt-wheels "$dbt_wheels")
  printf '%s\n' "$airflow_spec" >"$ctx/airflow-spec.txt"
  docker build -q --rm --force-rm --label "$label=$inputs" --build-arg "AIRFLOW_VERSION=$airflow_version" \
    --build-arg "PIP_VERSION=$image_pip_version" -t "apache/airflow:$airflow_version" "$ctx" 2>&1 >/dev/null | quiet_builder >&2
  log "built apache/airflow:$airflow_version"
fi
rm -rf "$cache"/context-*
# The images a rebuild replaced, now untagged.
docker image prune -f --filter "label=$label" >/dev/null
log "stand-ins ready: $base postgres:16 redis:7.2-bookworm python:3.11-slim apache/airflow:$airflow_version"
