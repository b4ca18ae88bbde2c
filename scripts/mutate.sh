#!/usr/bin/env bash
# Checks that the tests catch faults. For each named fault in
# tests/mutations/faults.mjs, applies it to a copy of the repository in a temporary
# folder, builds that copy's package, runs the fault's test files against it, and
# reports whether at least one test failed (it should: "caught"). A fault that no
# test notices is reported as "MISSED", and the script exits 1.
#
# The faults exist only in the copy; nothing here changes the shipped build. The
# copy's wasm target folder is target/mutants, shared between runs, so only the
# first build rebuilds std (a few minutes); each fault then costs about a minute of
# build plus its tests. This is a developer tool, not part of scripts/test.sh.
#
# Usage: scripts/mutate.sh [FAULT ...]     (default: every fault)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

faults=("$@")
if [ ${#faults[@]} -eq 0 ]; then
  mapfile -t faults < <(node "$repo_root/tests/mutations/faults.mjs" list | cut -f1)
fi

copy="$(mktemp -d "${TMPDIR:-/tmp}/pte-mutate.XXXXXX")"
trap 'rm -rf "$copy"' EXIT
mkdir -p "$repo_root/target/mutants"

# A copy of everything the build and the tests read. node_modules is linked entry by
# entry, except the package itself, which resolves to the copy's pkg/.
fresh_copy() {
  rm -rf "$copy/src" "$copy/pkg" "$copy/tests" "$copy/scripts"
  cp -r "$repo_root/src" "$repo_root/tests" "$repo_root/scripts" "$copy/"
  mkdir -p "$copy/pkg"
  cp "$repo_root"/pkg/*.js "$repo_root"/pkg/*.d.ts "$repo_root/pkg/package.json" "$copy/pkg/"
  cp "$repo_root/Cargo.toml" "$repo_root/Cargo.lock" "$repo_root/package.json" "$copy/"
  # The build copies these into pkg/.
  cp "$repo_root/README.md" "$repo_root/LICENSE-MIT" "$repo_root/LICENSE-APACHE" "$copy/"
  [ -d "$repo_root/.cargo" ] && cp -r "$repo_root/.cargo" "$copy/"
  ln -sfn "$repo_root/target/mutants" "$copy/target"
  mkdir -p "$copy/node_modules"
  for entry in "$repo_root"/node_modules/* "$repo_root"/node_modules/.bin; do
    name="$(basename "$entry")"
    [ "$name" = parallel-task-executor ] || ln -sfn "$entry" "$copy/node_modules/$name"
  done
  ln -sfn ../pkg "$copy/node_modules/parallel-task-executor"
}

# The unchanged copy must build, or every fault would look like a build failure (for
# example while someone is in the middle of an edit).
fresh_copy
log "building the unchanged copy"
if ! "$copy/scripts/build.sh" >"$copy/build.log" 2>&1; then
  tail -20 "$copy/build.log" >&2
  die "the unchanged copy does not build; fix the working tree first"
fi

results=()
missed=0
for fault in "${faults[@]}"; do
  fresh_copy
  tests="$(node "$repo_root/tests/mutations/faults.mjs" tests "$fault")"
  log "fault $fault: applying, building"
  if ! node "$repo_root/tests/mutations/faults.mjs" apply "$fault" "$copy"; then
    results+=("$fault: STALE (its source text changed; update tests/mutations/faults.mjs)")
    missed=1
    continue
  fi
  if ! "$copy/scripts/build.sh" >"$copy/build.log" 2>&1; then
    tail -20 "$copy/build.log" >&2
    results+=("$fault: BUILD FAILED")
    missed=1
    continue
  fi
  log "fault $fault: running $tests"
  # shellcheck disable=SC2086 # the test list is space-separated file names
  # A fault that leaks requests keeps sockets open after the last test, so the test
  # processes are ended when their tests are done.
  if (cd "$copy" && timeout 600 node --test --test-force-exit --test-concurrency=1 $tests >"$copy/test.log" 2>&1); then
    results+=("$fault: MISSED (every test passed: $tests)")
    missed=1
  else
    failed="$(grep -E '^not ok|^    not ok' "$copy/test.log" | sed -E 's/^ *not ok [0-9]+ - //' | head -n 4 | paste -sd ';' -)"
    results+=("$fault: caught by: ${failed:-a failing test file}")
  fi
done

printf '\n'
for line in "${results[@]}"; do
  printf '%s\n' "$line"
done
exit "$missed"
