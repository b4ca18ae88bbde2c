# Shared by the scripts in this folder: logging, the toolchain choice, and checks
# that name what is missing and how to install it. Source it; do not run it.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export repo_root

# The wasm-bindgen crate version pinned in Cargo.toml; the CLI must match it exactly.
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' "$repo_root/Cargo.toml")"
export WASM_BINDGEN_VERSION

log() {
  printf '[%s] %s\n' "$(basename "$0")" "$*" >&2
}

die() {
  printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

is_root() {
  [ "$(id -u)" = 0 ]
}

have_deb() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs Debian packages that are missing. Needs root and apt-get.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    have_deb "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]}, and this is not a Debian system with apt-get; install the equivalents by hand"
  is_root || die "missing Debian packages ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# Chooses the wasm toolchain and exports WASM_CARGO (the cargo command) and
# WASM_CARGO_FLAGS. rustup's wasm32 target wins where it is installed; otherwise
# Debian's rustc-web builds std for wasm32 itself (-Zbuild-std).
choose_toolchain() {
  if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    WASM_TOOLCHAIN=rustup
    WASM_CARGO=(cargo)
    WASM_CARGO_FLAGS=()
  elif [ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . && have_deb rustc-web && have_deb rust-web-src; then
    WASM_TOOLCHAIN=debian
    WASM_CARGO=(env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 /usr/bin/cargo)
    WASM_CARGO_FLAGS=(-Zbuild-std=std,panic_abort)
  else
    return 1
  fi
  export WASM_TOOLCHAIN
}

# The cargo that builds host tools (wasm-bindgen-cli) and runs native tests.
host_cargo() {
  if command -v cargo >/dev/null; then
    echo cargo
  elif [ -x /usr/bin/cargo ]; then
    echo /usr/bin/cargo
  else
    return 1
  fi
}

cargo_bin_dir() {
  echo "${CARGO_HOME:-$HOME/.cargo}/bin"
}

wasm_bindgen_bin() {
  local bin
  bin="$(cargo_bin_dir)/wasm-bindgen"
  if [ -x "$bin" ]; then
    echo "$bin"
  else
    command -v wasm-bindgen || true
  fi
}
