#!/usr/bin/env bash
# Runs every test: the Rust unit tests natively, then the JavaScript suites in
# Node against the built package, which start workerd (through Miniflare) and
# headless Chromium themselves. One local model server serves the whole run.
# Installs and builds what is missing first (scripts/setup.sh, scripts/build.sh).
#
# Usage: scripts/test.sh [node --test file or pattern ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$repo_root/scripts/setup.sh" --browser --model
"$repo_root/scripts/build.sh"

cargo="$(host_cargo)" || die "cargo is missing; install Rust with rustup (https://rustup.rs)"
log "cargo test (native)"
(cd "$repo_root" && CARGO_TARGET_DIR="$repo_root/target/native" "$cargo" test --quiet) || die "cargo test failed"

# One model server for every test file, with 4 slots so concurrent tests do not queue.
model_log="$(mktemp)"
node "$repo_root/scripts/local-model/index.mjs" --slots 4 >"$model_log" 2>&1 &
model_pid=$!
trap 'kill "$model_pid" 2>/dev/null || true; wait "$model_pid" 2>/dev/null || true; rm -f "$model_log"' EXIT
for _ in $(seq 1 600); do
  grep -q '^READY ' "$model_log" && break
  kill -0 "$model_pid" 2>/dev/null || { cat "$model_log" >&2; die "the local model server did not start"; }
  sleep 0.1
done
grep -q '^READY ' "$model_log" || die "the local model server did not report READY within 60 s"
LOCAL_MODEL_URL="$(sed -n 's/^READY //p' "$model_log" | head -n 1)"
export LOCAL_MODEL_URL
log "local model at $LOCAL_MODEL_URL"

log "node --test (Node, workerd, Chromium)"
cd "$repo_root"
# Every test process gets the loopback guard: a request to any other host fails.
guard=(--import ./tests/support/loopback-everywhere.mjs)
if [ "$#" -gt 0 ]; then
  node "${guard[@]}" --test --test-concurrency=1 "$@"
else
  node "${guard[@]}" --test --test-concurrency=1 tests/js/
fi
log "all tests passed"
