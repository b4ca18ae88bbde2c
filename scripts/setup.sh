#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already in place:
# the wasm toolchain, wasm-bindgen-cli at the crate's exact version, the npm
# packages from the lockfile, and with flags Debian's Chromium (--browser) and the
# local model server (--model). A second run finishes in seconds.
#
# Usage: scripts/setup.sh [--browser] [--model]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want_browser=0
want_model=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --model) want_model=1 ;;
    -h | --help)
      sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option $arg; see --help" ;;
  esac
done

# Node 20.19 or later: `require` of ES modules and the engines the lockfile pins.
command -v node >/dev/null || die "Node.js is missing; install Node 20.19 or later (https://nodejs.org or your package manager)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node $(node --version) is too old; install Node 20.19 or later"

# The wasm toolchain.
if ! choose_toolchain; then
  if command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    log "added rustup's wasm32-unknown-unknown target"
  elif command -v apt-get >/dev/null && is_root; then
    log "rustup has no wasm32 target here; using Debian's rustc-web with -Zbuild-std"
    apt_install rustc-web cargo-web rust-web-src lld-22
  else
    die "no Rust toolchain can build wasm32 here; run 'rustup target add wasm32-unknown-unknown', or on Debian as root: apt-get install -y rustc-web cargo-web rust-web-src lld-22"
  fi
  choose_toolchain || die "the wasm toolchain is still not usable after installing it"
fi
log "wasm toolchain: $WASM_TOOLCHAIN"

# wasm-bindgen-cli at exactly the crate's version. Without --locked: a dependency
# its lockfile pins is not served by every registry mirror.
wb="$(wasm_bindgen_bin)"
if [ -z "$wb" ] || [ "$("$wb" --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  cargo="$(host_cargo)" || die "cargo is missing; install Rust with rustup (https://rustup.rs) or apt-get install cargo"
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes, once per machine)"
  "$cargo" install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force \
    || die "cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION failed"
fi

# npm packages from the lockfile; reinstalled only when the lockfile changed.
stamp="$repo_root/node_modules/.package-lock.sha256"
want="$(sha256sum "$repo_root/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm packages (npm ci)"
  (cd "$repo_root" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  echo "$want" >"$stamp"
fi

if [ "$want_browser" = 1 ] && [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  if command -v apt-get >/dev/null; then
    apt_install chromium
  else
    die "Chromium is missing; install it and set CHROMIUM_PATH to its binary"
  fi
fi

if [ "$want_model" = 1 ]; then
  "$repo_root/scripts/local-model/install.sh" || die "installing the local model failed"
fi
log "setup complete"
