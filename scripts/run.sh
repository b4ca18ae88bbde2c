#!/usr/bin/env bash
# The main job: installs what is missing (scripts/setup.sh --model skips what is
# already in place), builds the package, then runs examples/main.mjs with the
# given options: a vote and a sectioning job against the local model, or with
# --serve the demo page. See `scripts/run.sh --help`.
#
# Usage: scripts/run.sh [options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --help needs neither the toolchain nor a build when the package is built already.
for arg in "$@"; do
  if [ "$arg" = "--help" ] && [ -f "$repo_root/pkg/wasm/parallel_task_executor_bg.wasm" ]; then
    exec node "$repo_root/examples/main.mjs" --help
  fi
done

"$repo_root/scripts/setup.sh" --model
"$repo_root/scripts/build.sh"

cd "$repo_root"
# exec: Ctrl-C and SIGTERM reach node directly, which stops the model it started.
exec node examples/main.mjs "$@"
