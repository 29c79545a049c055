#!/bin/sh
# Install what building and testing rdtrace needs and a fresh machine lacks.
# Idempotent: packages already present are not touched, so `make` may call
# this on every run.
#
# Debian 12 (the development and CI machines):
#   - rustc-web, cargo-web, rust-web-src (bookworm-security, Rust 1.96): the
#     toolchain that builds core/alloc for the kernel targets (build-std);
#     the machine's rustup stable builds everything else.
#   - clang, libclang-dev: the C shim and bindgen; clang also cross-compiles
#     the per-ISA instruction corpus used by the fbt decoder tests.
#   - lld-19, lld-22: ld.lld links the modules (rust-lld is a link to lld-22).
#   - llvm: llvm-objdump/llvm-readelf for the .ko checks.
#   - atf-sh, kyua: the ATF/Kyua suite.
# FreeBSD: nothing is installed; we only say what is missing.
set -eu

DEBIAN_PACKAGES="rustc-web cargo-web rust-web-src clang libclang-dev lld-19 lld-22 llvm atf-sh kyua python3 make"

have_package() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

setup_debian() {
    missing=""
    for p in $DEBIAN_PACKAGES; do
        have_package "$p" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "setup: installing:$missing"
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        # rustc-web and friends come from bookworm-security; apt picks the
        # newest candidate, which is the 1.96 build we need.
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
    fi
    # rustup components used by `make test`.
    if command -v rustup >/dev/null 2>&1; then
        for c in rustfmt clippy; do
            rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
        done
    fi
    setup_cargo_fuzz
    /usr/bin/rustc --version | grep -q '^rustc 1\.9[6-9]\|^rustc 1\.[1-9][0-9][0-9]' || {
        echo "setup: /usr/bin/rustc is not the 1.96 rustc-web toolchain" >&2
        exit 1
    }
}

# cargo-fuzz for `make fuzz` / `make fuzz-smoke` (built once with the rustup
# stable toolchain; the Makefile runs it with RUSTC_BOOTSTRAP=1).
setup_cargo_fuzz() {
    command -v cargo-fuzz >/dev/null 2>&1 && return 0
    command -v cargo >/dev/null 2>&1 || return 0
    echo "setup: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
}

setup_freebsd() {
    for tool in cargo rustc ld.lld clang kyua; do
        command -v "$tool" >/dev/null 2>&1 || echo "setup: $tool not found (pkg install rust-nightly llvm kyua)" >&2
    done
    command -v cargo-fuzz >/dev/null 2>&1 || echo "setup: cargo-fuzz not found (cargo install --locked cargo-fuzz; needed by make fuzz)" >&2
}

case "$(uname -s)" in
Linux)
    if [ -r /etc/debian_version ]; then
        setup_debian
    else
        echo "setup: not a Debian system; install the equivalents of: $DEBIAN_PACKAGES" >&2
    fi
    ;;
FreeBSD) setup_freebsd ;;
*) echo "setup: unsupported host $(uname -s)" >&2; exit 1 ;;
esac
