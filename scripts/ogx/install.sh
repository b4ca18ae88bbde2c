#!/usr/bin/env bash
# Installs ogx (the OpenAI-compatible server that was Llama Stack) into
# target/ogx/venv, for the batch tests that use it as a local peer of the
# OpenAI Batch API and Anthropic Message Batches.
#
# ogx needs Python 3.12 or later. The script looks for one in this order:
# $OGX_PYTHON, python3.13, python3.12, pyenv's newest 3.12 or 3.13, python3.
# When none is found it prints why and exits with status 2, so callers can
# skip the ogx tests instead of failing.
#
# The script is idempotent: when ogx is already installed at the pinned version
# it only checks it and exits.
# Usage: scripts/ogx/install.sh
set -euo pipefail

OGX_VERSION="1.5.0"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
venv="$repo_root/target/ogx/venv"
python="$venv/bin/python"

# Prints "MAJOR.MINOR" of a Python interpreter, or nothing when it does not run.
python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

# Whether a "MAJOR.MINOR" version is 3.12 or later.
is_recent() {
  local major="${1%%.*}" minor="${1#*.}"
  [ -n "$1" ] && [ "$major" -eq 3 ] && [ "$minor" -ge 12 ]
}

find_python() {
  local candidates=()
  [ -n "${OGX_PYTHON:-}" ] && candidates+=("$OGX_PYTHON")
  candidates+=(python3.13 python3.12)
  if command -v pyenv >/dev/null 2>&1; then
    local root
    root="$(pyenv root)"
    local version
    for version in $(ls "$root/versions" 2>/dev/null | grep -E '^3\.1[23]\.[0-9]+$' | sort -t. -k2,2nr -k3,3nr); do
      candidates+=("$root/versions/$version/bin/python3")
    done
  fi
  candidates+=(python3)
  local candidate
  for candidate in "${candidates[@]}"; do
    local path
    path="$(command -v "$candidate" 2>/dev/null || true)"
    [ -n "$path" ] || continue
    if is_recent "$(python_version "$path")"; then
      echo "$path"
      return 0
    fi
  done
  return 1
}

installed_version() {
  "$python" - <<'PY'
import importlib.metadata
try:
    print(importlib.metadata.version("ogx"))
except importlib.metadata.PackageNotFoundError:
    pass
PY
}

if [ -x "$python" ] && is_recent "$(python_version "$python")" && [ "$(installed_version)" = "$OGX_VERSION" ]; then
  echo "ogx: $OGX_VERSION already installed in $venv"
  exit 0
fi

if ! base_python="$(find_python)"; then
  echo "ogx: no Python 3.12 or later found (tried \$OGX_PYTHON, python3.13, python3.12, pyenv versions, python3); ogx $OGX_VERSION needs Python >= 3.12" >&2
  exit 2
fi

if [ ! -x "$python" ] || ! is_recent "$(python_version "$python")"; then
  echo "ogx: creating $venv with $base_python ($(python_version "$base_python"))"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$base_python" -m venv "$venv"
fi

echo "ogx: installing ogx $OGX_VERSION"
"$python" -m pip install --quiet --disable-pip-version-check "ogx==$OGX_VERSION"
echo "ogx: installed $(installed_version) in $venv"
