#!/bin/sh
# Regression gate: every test listed in tests/conformance/passing.txt must
# still pass. Skips (with a message) when ../shared/conformance is absent.
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
python3 "$SUITE/run_corpus.py" -j "${JOBS:-2}" "$PWD/target/release/dtrace" "$LIST"
