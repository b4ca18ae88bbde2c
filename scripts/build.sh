#!/usr/bin/env bash
# Builds the npm package in pkg/: the release wasm, then wasm-bindgen --target web,
# then wasm-opt -Oz (npm binaryen; Debian's binaryen 108 corrupts the output), into
# pkg/wasm/. Prints the size of the wasm and of the JS glue, raw and gzipped.
#
# Usage: scripts/build.sh            (run scripts/setup.sh first)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step() {
  current_step="$1"
  log "$1"
}
trap 'die "build step failed: $current_step"' ERR

choose_toolchain || die "no wasm toolchain; run scripts/setup.sh first"
wb="$(wasm_bindgen_bin)"
[ -n "$wb" ] || die "wasm-bindgen is missing; run scripts/setup.sh first"
[ -x "$repo_root/node_modules/.bin/wasm-opt" ] || die "wasm-opt (npm binaryen) is missing; run scripts/setup.sh first"

out="$repo_root/pkg/wasm"
name=parallel_task_executor
# Native and wasm builds use separate target folders: they may use different compilers.
export CARGO_TARGET_DIR="$repo_root/target/wasm"

step "cargo build (wasm32, release, $WASM_TOOLCHAIN toolchain)"
(cd "$repo_root" && "${WASM_CARGO[@]}" build --quiet --release --target wasm32-unknown-unknown "${WASM_CARGO_FLAGS[@]}")

step "wasm-bindgen --target web"
mkdir -p "$out"
"$wb" --target web --out-dir "$out" --out-name "$name" --no-typescript \
  --remove-name-section --remove-producers-section \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/$name.wasm"

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
log "built pkg/"
