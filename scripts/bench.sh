#!/bin/sh
# Runs the criterion benchmarks (short measurement times) and prints one
# line per benchmark: `<name> <median ns>`, read from criterion's
# <target>/criterion/<name>/new/estimates.json.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
# The probe-path benchmarks (issue 3) and the D compiler's (issue 4).
for bench in "rdtrace-hosted probe" "rdtrace-libdtrace compile"; do
    set -- $bench
    cargo bench -q -p "$1" --bench "$2" -- --noplot >/dev/null 2>&1 || {
        echo "bench: cargo bench -p $1 --bench $2 failed" >&2
        cargo bench -q -p "$1" --bench "$2" -- --noplot >&2
        exit 1
    }
done
for est in "$target"/criterion/*/new/estimates.json; do
    [ -f "$est" ] || continue
    name=$(basename "$(dirname "$(dirname "$est")")" | tr " " "_")
    median=$(sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.eE+-]*\).*/\1/p' "$est")
    printf '%s %.2f\n' "$name" "$median"
done
