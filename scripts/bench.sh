#!/usr/bin/env bash
# Runs the benchmark suite and writes BENCHMARKS.md. It compares scheduling
# overhead, size and start-up with fetch + p-limit, the AI SDK and LangChain.js,
# and measures aggregation throughput, vote efficiency against the closed forms,
# the real local model, and memory over repeated runs. It first installs and
# builds what is missing (scripts/setup.sh --model, scripts/build.sh, and the peer
# libraries from bench/package-lock.json). A full run takes about 10 minutes on 2
# cores; --quick takes seconds.
#
# Usage: scripts/bench.sh [--quick] [--out FILE] [--json FILE] [--only PART,...]
#   --quick   every part at a tiny size, to check that the suite runs (writes to a
#             temporary folder unless --out is given)
#   --out     where to write the Markdown report (default: BENCHMARKS.md)
#   --json    also write every figure as JSON
#   --only    run only these parts: overhead, size, startup, aggregate, votes, model, memory, cloudflare
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
  esac
done

"$repo_root/scripts/setup.sh" --model
"$repo_root/scripts/build.sh"

# The peer libraries, pinned in bench/package-lock.json; reinstalled only when
# they are missing or the lockfile changed.
bench="$repo_root/bench"
stamp="$bench/node_modules/.package-lock.sha256"
want="$(sha256sum "$bench/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing the benchmark's peer libraries (npm ci --prefix bench)"
  npm ci --prefix "$bench" --no-audit --no-fund --loglevel=error || die "npm ci --prefix bench failed"
  echo "$want" >"$stamp"
fi

cd "$repo_root"
exec node "$bench/run.mjs" "$@"
