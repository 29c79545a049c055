#!/bin/sh
# Compare rdtrace_kpi.h with a real FreeBSD kernel source tree.
#
#   sys-headers/layout-check.sh [amd64|arm64|riscv64]   (default amd64)
#   sys-headers/layout-check.sh --expected              (step 1 only: print
#                                                        our values)
#
# Uses $FREEBSD_SRC/sys (default /usr/src/sys). Without one it prints
# "SKIPPED: ..." and exits 0: these machines have no FreeBSD source, CI on
# FreeBSD does.
#
# 1. layout_ours: our declarations, compiled and run on the host, print the
#    sizes, offsets and constants listed in layout-fields.def as #defines.
# 2. The same list is checked with _Static_assert against the real headers,
#    compiled (syntax only) for the FreeBSD kernel of that architecture.
# 3. Extra facts our code relies on without declaring a structure: struct
#    rmlock and struct rm_priotracker fit the storage we reserve, and
#    pc_curthread is the first word of struct pcpu and pc_cpuid sits at one
#    of the offsets the module probes (52 or 60).
set -eu

arch=${1:-amd64}
expected_only=no
if [ "$arch" = --expected ]; then
    expected_only=yes
    arch=amd64
fi
case "$arch" in
amd64) clang_target=x86_64-unknown-freebsd; machine_dirs="amd64 x86" ;;
arm64) clang_target=aarch64-unknown-freebsd; machine_dirs="arm64" ;;
riscv64) clang_target=riscv64-unknown-freebsd; machine_dirs="riscv" ;;
*) echo "usage: $0 [amd64|arm64|riscv64]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
src=${FREEBSD_SRC:-/usr/src}
sys=$src/sys
if [ $expected_only = no ] && { [ ! -f "$sys/sys/param.h" ] || [ ! -d "$sys/${machine_dirs%% *}/include" ]; }; then
    echo "SKIPPED: no FreeBSD kernel source at $sys (set FREEBSD_SRC to a FreeBSD source tree to run the layout check)"
    exit 0
fi
CC=${CC:-clang}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Our values.
cat >"$work/layout_ours.c" <<'C'
#include "rdtrace_kpi.h"
#define SIZE(id, type) printf("#define EXPECT_%s %lu\n", #id, (unsigned long)sizeof(type));
#define OFFSET(id, type, field) printf("#define EXPECT_%s %lu\n", #id, (unsigned long)__builtin_offsetof(type, field));
#define CONST(name) printf("#define EXPECT_%s %lld\n", #name, (long long)(name));
int main(void) {
#include "layout-fields.def"
	printf("#define EXPECT_RMLOCK_STORAGE %d\n", RDTRACE_RMLOCK_STORAGE);
	printf("#define EXPECT_RM_PRIOTRACKER_STORAGE %d\n", RDTRACE_RM_PRIOTRACKER_STORAGE);
	return 0;
}
C
"$CC" -ffreestanding -fno-builtin -w -I"$here" -o "$work/layout_ours" "$work/layout_ours.c"
"$work/layout_ours" >"$work/layout_expected.h"
if [ $expected_only = yes ]; then
    cat "$work/layout_expected.h"
    exit 0
fi

# 2./3. The real headers.
mkdir -p "$work/inc"
for d in $machine_dirs; do
    name=$d
    [ "$d" = "${machine_dirs%% *}" ] && name=machine
    ln -s "$sys/$d/include" "$work/inc/$name"
done
cat >"$work/layout_real.c" <<'C'
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/linker.h>
#include <sys/conf.h>
#include <sys/malloc.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/sx.h>
#include <sys/rmlock.h>
#include <sys/callout.h>
#include <sys/pcpu.h>
#include <sys/sysctl.h>
#include <sys/eventhandler.h>
#include <sys/time.h>
#include "layout_expected.h"
#define SIZE(id, type) _Static_assert(sizeof(type) == EXPECT_##id, "size of " #type " differs from rdtrace_kpi.h");
#define OFFSET(id, type, field) _Static_assert(__builtin_offsetof(type, field) == EXPECT_##id, "offset of " #type "." #field " differs from rdtrace_kpi.h");
#define CONST(name) _Static_assert((long long)(name) == EXPECT_##name, #name " differs from rdtrace_kpi.h");
#include "layout-fields.def"
_Static_assert(sizeof(struct rmlock) <= EXPECT_RMLOCK_STORAGE, "struct rmlock outgrew RDTRACE_RMLOCK_STORAGE");
_Static_assert(sizeof(struct rm_priotracker) <= EXPECT_RM_PRIOTRACKER_STORAGE, "struct rm_priotracker outgrew RDTRACE_RM_PRIOTRACKER_STORAGE");
_Static_assert(__builtin_offsetof(struct pcpu, pc_curthread) == 0, "pc_curthread is not the first word of struct pcpu");
_Static_assert(__builtin_offsetof(struct pcpu, pc_cpuid) == 52 || __builtin_offsetof(struct pcpu, pc_cpuid) == 60, "pc_cpuid is at an offset rdtrace.ko does not probe");
C
"$CC" --target="$clang_target" -fsyntax-only -ffreestanding -nostdinc \
    -D_KERNEL -DKLD_MODULE -I"$work" -I"$here" -I"$work/inc" -I"$sys" \
    -I"$sys/contrib/ck/include" "$work/layout_real.c"
echo "layout check ($arch, $sys): rdtrace_kpi.h agrees with the FreeBSD headers"
