#!/bin/sh
# Runs the criterion benchmarks (short measurement times) and prints one
# line per benchmark: `<name> <median ns>`, read from criterion's
# <target>/criterion/<name>/new/estimates.json.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo bench -q -p rdtrace-hosted --bench probe -- --noplot >/dev/null 2>&1 || {
    echo "bench: cargo bench failed" >&2
    cargo bench -q -p rdtrace-hosted --bench probe -- --noplot >&2
    exit 1
}
for est in "$target"/criterion/*/new/estimates.json; do
    [ -f "$est" ] || continue
    name=$(basename "$(dirname "$(dirname "$est")")")
    median=$(sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.eE+-]*\).*/\1/p' "$est")
    printf '%s %.2f\n' "$name" "$median"
done
