#!/bin/sh
# The README's main job: a D program through dtrace on the hosted kernel.
set -eu
cd "$(dirname "$0")/.."
DTRACE=target/release/dtrace
$DTRACE -V
$DTRACE -l
