#!/usr/bin/env bash
# Builds the npm package in pkg/: the release wasm, then wasm-bindgen --target web,
# then wasm-opt -Oz (npm binaryen; Debian's binaryen 108 corrupts the output), into
# pkg/wasm/. Prints the size of the wasm and of the JS glue, raw and gzipped.
#
# The wasm is built with panic=unwind (wasm exception handling, std rebuilt with
# -Zbuild-std), so a panic rejects the call that hit it with a PanicError instead of
# trapping the module and leaving every pending promise unsettled. A toolchain that
# cannot rebuild std (rustup's prebuilt wasm32 std without rust-src) falls back to
# panic=abort with a warning.
#
# Usage: scripts/build.sh               (run scripts/setup.sh first)
#        scripts/build.sh --panic-probe  the test build with the hidden panic-probe
#                                        exports, in target/panic-probe/pkg
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

probe=0
case "${1:-}" in
  --panic-probe) probe=1 ;;
  "") ;;
  *) die "unknown argument $1; expected nothing or --panic-probe" ;;
esac

step() {
  current_step="$1"
  log "$1"
}
trap 'die "build step failed: $current_step"' ERR

choose_toolchain || die "no wasm toolchain; run scripts/setup.sh first"
wb="$(wasm_bindgen_bin)"
[ -n "$wb" ] || die "wasm-bindgen is missing; run scripts/setup.sh first"
[ -x "$repo_root/node_modules/.bin/wasm-opt" ] || die "wasm-opt (npm binaryen) is missing; run scripts/setup.sh first"

name=parallel_task_executor
features=()
# Native and wasm builds use separate target folders: they may use different compilers.
# The probe build shares the wasm one, so std is built once for both; switching
# between them recompiles only this crate.
export CARGO_TARGET_DIR="$repo_root/target/wasm"
if [ "$probe" = 1 ]; then
  # A separate package folder, so the shipped pkg/ never contains the probe.
  pkg_dir="$repo_root/target/panic-probe/pkg"
  features=(--features panic-probe)
else
  pkg_dir="$repo_root/pkg"
fi
out="$pkg_dir/wasm"

# Unwinding needs std rebuilt with panic_unwind. The Debian toolchain always rebuilds
# std; rustup's does only when its wasm32 std can be rebuilt from rust-src.
panic_flags=()
if [ "$WASM_TOOLCHAIN" = debian ]; then
  panic_flags=(-Zbuild-std=std,panic_unwind --config 'profile.release.panic="unwind"')
  export RUSTFLAGS="-Cpanic=unwind -Ctarget-feature=+exception-handling"
else
  log "warning: the $WASM_TOOLCHAIN toolchain cannot rebuild std here; building with panic=abort, so a panic traps the module"
  panic_flags=("${WASM_CARGO_FLAGS[@]}")
fi

# Both builds write the same .wasm in the target folder, so one build at a time runs
# from cargo to wasm-bindgen, which reads that file.
mkdir -p "$CARGO_TARGET_DIR"
exec 9>"$CARGO_TARGET_DIR/.build.sh.lock"
flock 9

step "cargo build (wasm32, release, $WASM_TOOLCHAIN toolchain)"
(cd "$repo_root" && "${WASM_CARGO[@]}" build --quiet --release --target wasm32-unknown-unknown "${panic_flags[@]}" "${features[@]}")

step "wasm-bindgen --target web"
mkdir -p "$out"
"$wb" --target web --out-dir "$out" --out-name "$name" --no-typescript \
  --remove-name-section --remove-producers-section \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/$name.wasm"

flock -u 9

step "wasm-opt -Oz"
"$repo_root/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
  "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm.opt"
mv "$out/${name}_bg.wasm.opt" "$out/${name}_bg.wasm"

step "sizes"
gz() { gzip -9c "$1" | wc -c; }
glue_min="$(mktemp)"
"$repo_root/node_modules/.bin/esbuild" --minify --log-level=error "$out/$name.js" >"$glue_min"
printf '  %-28s %9s bytes  %8s gzipped\n' "${name}_bg.wasm" "$(wc -c <"$out/${name}_bg.wasm")" "$(gz "$out/${name}_bg.wasm")" >&2
printf '  %-28s %9s bytes  %8s gzipped (%s minified, %s gzipped)\n' "$name.js" "$(wc -c <"$out/$name.js")" "$(gz "$out/$name.js")" "$(wc -c <"$glue_min")" "$(gz "$glue_min")" >&2
rm -f "$glue_min"
if [ "$probe" = 1 ]; then
  cp "$repo_root"/pkg/*.js "$repo_root/pkg/package.json" "$pkg_dir/"
  log "built the panic-probe package in ${pkg_dir#"$repo_root"/}"
else
  # npm shows the README on the package's page; the licence texts travel with it.
  cp "$repo_root/README.md" "$repo_root/LICENSE-MIT" "$repo_root/LICENSE-APACHE" "$pkg_dir/"
  log "built pkg/"
fi
