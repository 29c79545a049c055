#!/bin/sh
# Build rdtrace.ko for one FreeBSD architecture.
#
#   scripts/build-kmod.sh amd64|arm64|riscv64
#
# Prints the path of the module it built (build/<arch>/rdtrace.ko).
#
# 1. The kmod crate (kmod/module) and everything under it, core and alloc
#    included, are compiled with kernel code generation from the target spec
#    in targets/ (build-std), as one staticlib with fat LTO. The C shim from
#    sys-headers/ is compiled by ffi's build script and lands in the same
#    archive.
# 2. ld.lld links the archive into the module, keeping only what the linker
#    sets and exported entry points reach (--gc-sections):
#      amd64:          a relocatable object (ld -r), as link_elf_obj loads;
#      arm64, riscv64: a shared object with the __start_/__stop_ symbols of
#                      every linker set exported, as link_elf loads.
# 3. Symbols other than the kernel imports and the module's exports are made
#    local, like FreeBSD's EXPORT_SYMS handling.
#
# Environment: KERNEL_CARGO (default /usr/bin/cargo), KERNEL_RUSTC (default
# /usr/bin/rustc), FREEBSD_RELEASE (default 15.0), LD_LLD (default: the first
# of ld.lld, ld.lld-19, ld.lld-22, rust-lld -flavor gnu), LLVM_OBJCOPY.
# Repeated builds are incremental: cargo's target dir is build/cargo-target.
set -eu

usage() {
    echo "usage: $0 amd64|arm64|riscv64" >&2
    exit 2
}

[ $# -eq 1 ] || usage
arch=$1
case "$arch" in
amd64) rust_arch=x86_64 ;;
arm64) rust_arch=aarch64 ;;
riscv64) rust_arch=riscv64 ;;
*) usage ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
spec_name=${rust_arch}-rdtrace-kernel
spec=$root/targets/$spec_name.json
out_dir=$root/build/$arch
cargo_target_dir=$root/build/cargo-target
ko=$out_dir/rdtrace.ko

KERNEL_CARGO=${KERNEL_CARGO:-/usr/bin/cargo}
KERNEL_RUSTC=${KERNEL_RUSTC:-/usr/bin/rustc}
FREEBSD_RELEASE=${FREEBSD_RELEASE:-15.0}
export FREEBSD_RELEASE

find_tool() {
    for t in "$@"; do
        if command -v "$t" >/dev/null 2>&1; then
            echo "$t"
            return 0
        fi
    done
    return 1
}

LD_LLD=${LD_LLD:-$(find_tool ld.lld ld.lld-22 ld.lld-19 || true)}
if [ -z "$LD_LLD" ]; then
    if command -v rust-lld >/dev/null 2>&1; then
        LD_LLD="rust-lld -flavor gnu"
    else
        echo "build-kmod: no ld.lld found (install lld; see scripts/setup.sh)" >&2
        exit 1
    fi
fi
LLVM_OBJCOPY=${LLVM_OBJCOPY:-$(find_tool llvm-objcopy-22 llvm-objcopy-19 llvm-objcopy llvm-objcopy19 llvm-objcopy18 || true)}
LLVM_NM=${LLVM_NM:-$(find_tool llvm-nm-22 llvm-nm-19 llvm-nm llvm-nm19 llvm-nm18 || true)}
LLVM_READELF=${LLVM_READELF:-$(find_tool llvm-readelf-22 llvm-readelf-19 llvm-readelf llvm-readelf19 llvm-readelf18 || true)}
if [ -z "$LLVM_OBJCOPY" ] || [ -z "$LLVM_NM" ] || [ -z "$LLVM_READELF" ]; then
    echo "build-kmod: llvm-objcopy/llvm-nm/llvm-readelf not found (install llvm)" >&2
    exit 1
fi

mkdir -p "$out_dir"

# ---- 1. compile -------------------------------------------------------------
# Only the profile settings below apply; a RUSTFLAGS meant for the host must
# not leak into the kernel build.
(
    cd "$root"
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_RUSTFLAGS
    RUSTC=$KERNEL_RUSTC \
    RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR=$cargo_target_dir \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=2 \
    CARGO_PROFILE_RELEASE_PANIC=abort \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
        $KERNEL_CARGO rustc --quiet -p rdtrace-kmod --lib --release \
        --crate-type staticlib \
        --target "$spec" \
        -Zbuild-std=core,alloc \
        -Zbuild-std-features=compiler-builtins-mem \
        -Zjson-target-spec
)
archive=$cargo_target_dir/$spec_name/release/librdtrace_kmod.a
[ -f "$archive" ] || {
    echo "build-kmod: $archive was not produced" >&2
    exit 1
}

# ---- 2. link ------------------------------------------------------------------
# The linker sets the module defines (ELF sections named set_<name>).
set_sections=$("$LLVM_READELF" -S -W "$archive" 2>/dev/null |
    grep -o ' set_[A-Za-z0-9_]*' | sort -u | tr -d ' ')

# Symbols the module exports to the kernel and to other modules (the DTrace
# framework entry points stock providers import). Everything else is local.
exports=$out_dir/exports.txt
"$LLVM_NM" --defined-only --extern-only --format=just-symbols "$archive" 2>/dev/null |
    grep -v ':$' | grep -E '^(dtrace_|rdtrace_)' | grep -v '^rdtrace_shim_' | sort -u >"$exports" || true

tmp=$out_dir/rdtrace.ko.tmp
rm -f "$tmp"
case "$arch" in
amd64)
    keep=""
    while read -r sym; do keep="$keep -u $sym"; done <"$exports"
    # shellcheck disable=SC2086
    $LD_LLD -r --gc-sections --strip-debug -m elf_x86_64 \
        $keep \
        --whole-archive "$archive" --no-whole-archive \
        -o "$tmp"
    ;;
arm64 | riscv64)
    # link_elf finds a set through the symbols __start_set_<name> and
    # __stop_set_<name>: define them around each set's (single) output
    # section and export them with the module's entry points.
    version_script=$out_dir/exports.map
    sets_script=$out_dir/sets.ld
    {
        echo "{ global:"
        sed 's/$/;/' "$exports"
        for s in $set_sections; do
            echo "__start_$s;"
            echo "__stop_$s;"
        done
        echo "local: *; };"
    } >"$version_script"
    {
        echo "SECTIONS {"
        for s in $set_sections; do
            echo "  $s : { __start_$s = .; KEEP(*($s)) __stop_$s = .; }"
        done
        echo "} INSERT AFTER .data;"
    } >"$sets_script"
    emulation=aarch64elf
    [ "$arch" = riscv64 ] && emulation=elf64lriscv
    # shellcheck disable=SC2086
    $LD_LLD -shared -Bshareable -z notext -z norelro --no-relax \
        -z max-page-size=4096 -z common-page-size=4096 \
        --gc-sections --strip-debug -m $emulation \
        --version-script "$version_script" \
        --hash-style=sysv \
        -T "$sets_script" \
        --whole-archive "$archive" --no-whole-archive \
        -o "$tmp"
    ;;
esac

# ---- 3. localise ---------------------------------------------------------------
# Also drop what only the LLVM toolchain reads (embedded bitcode from
# compiler_builtins, address-significance tables).
strip_llvm="--remove-section=.llvmbc --remove-section=.llvmcmd --remove-section=.llvm_addrsig"
if [ "$arch" = amd64 ]; then
    # Every defined global that is not an export becomes local.
    localize=$out_dir/localize.txt
    "$LLVM_NM" --defined-only --extern-only --format=just-symbols "$tmp" |
        grep -vxF -f "$exports" >"$localize" || true
    # shellcheck disable=SC2086
    "$LLVM_OBJCOPY" $strip_llvm --localize-symbols="$localize" "$tmp"
else
    # shellcheck disable=SC2086
    "$LLVM_OBJCOPY" $strip_llvm "$tmp"
fi
mv -f "$tmp" "$ko"
echo "$ko"
