#!/bin/sh
# Tier 3 regression gate: every test in tests/conformance/passing.txt must
# still pass. Wrong output or exit status fails `make test`; a test that only
# timed out is not counted (--ignore-timeouts), because CI machines are
# shared and the suite's timers are wall-clock. Skips, with a message, when
# the suite (../shared/conformance) is absent.
set -eu
cd "$(dirname "$0")/.."
SUITE="${SHARED:-$PWD/../shared}/conformance"
LIST=tests/conformance/passing.txt
if [ ! -f "$SUITE/run_corpus.py" ]; then
    echo "conformance-check: SKIPPED: $SUITE not found (the suite lives beside the project in ../shared)"
    exit 0
fi
if [ ! -s "$LIST" ]; then
    echo "conformance-check: $LIST is empty; nothing to guard yet"
    exit 0
fi
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
status=0
python3 "$SUITE/run_corpus.py" --ignore-timeouts -j "${JOBS:-2}" "${CARGO_TARGET_DIR:-$PWD/target}/release/dtrace" "$LIST" >"$OUT" 2>&1 || status=$?
grep -v '^PASS' "$OUT" || true
if [ "$status" -ne 0 ]; then
    echo "conformance-check: a test in $LIST no longer passes (see above)"
    exit "$status"
fi
echo "conformance-check: all $(grep -c . "$LIST") listed tests still pass"
