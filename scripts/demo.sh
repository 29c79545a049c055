#!/bin/sh
# The README's main job: a D program through dtrace on the hosted kernel
# (an aggregation per CPU and a histogram; see examples/demo.d).
set -eu
cd "$(dirname "$0")/.."
DTRACE=${CARGO_TARGET_DIR:-target}/release/dtrace
$DTRACE -V
exec $DTRACE -s examples/demo.d
