#!/bin/sh
# Runs the ATF/Kyua suite in tests/atf against an already built dtrace(1).
#
#   scripts/atf-test.sh [path/to/dtrace]
#
# Builds nothing: the binary defaults to target/release/dtrace (or $DTRACE).
# Results go to a temporary kyua store that is removed afterwards, so repeated
# runs leave nothing under ~/.kyua. On any failure the full kyua report is
# printed. The last line is always "N passed, N failed" (a broken test case
# counts as failed; skipped cases and expected failures are in neither
# number) and the exit status is non-zero when any test failed.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
dtrace=${1:-${DTRACE:-${CARGO_TARGET_DIR:-$root/target}/release/dtrace}}
case $dtrace in
/*) ;;
*) dtrace=$(pwd)/$dtrace ;;
esac
if [ ! -x "$dtrace" ]; then
	echo "atf-test: $dtrace does not exist or is not executable; run 'make build' first" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
if ! command -v kyua >/dev/null 2>&1; then
	echo "atf-test: kyua is not installed (Debian: apt-get install kyua atf-sh; FreeBSD: base system)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rdtrace-atf.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
results=$work/results.db
kyuafile=$root/tests/atf/Kyuafile
# kyua logs to ~/.kyua/logs by default; keep the log with the results.
kyua() { command kyua --logfile="$work/kyua.log" "$@"; }

# kyua chdirs into per-test work directories, so the binary path must be
# absolute; it is passed both ways the tests accept.
DTRACE=$dtrace
export DTRACE
(cd "$root/tests/atf" &&
	kyua -v "test_suites.rdtrace.dtrace=$dtrace" test \
	    --kyuafile "$kyuafile" --results-file "$results")
test_status=$?

kyua report --results-file "$results" --output "$work/summary.txt" >/dev/null 2>&1
summary=$(grep '^Test cases:' "$work/summary.txt" 2>/dev/null)
# "Test cases: T total, S skipped, X expected failures, B broken, F failed"
# Word splitting is wanted: it yields the five counts as $1..$5.
# shellcheck disable=SC2046
set -- $(echo "$summary" | sed -n 's/^Test cases: \([0-9]*\) total, \([0-9]*\) skipped, \([0-9]*\) expected failures, \([0-9]*\) broken, \([0-9]*\) failed.*/\1 \2 \3 \4 \5/p')
if [ $# -ne 5 ]; then
	echo "atf-test: could not read kyua's summary (kyua exited $test_status)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
total=$1 skipped=$2 xfail=$3 broken=$4 failed=$5
passed=$((total - skipped - xfail - broken - failed))
bad=$((broken + failed))

if [ "$bad" -ne 0 ] || [ "$test_status" -ne 0 ]; then
	kyua report --results-file "$results" --verbose \
	    --results-filter broken,failed
fi
echo "atf-test: $total test cases, $skipped skipped, $xfail expected failures ($dtrace)"
echo "$passed passed, $bad failed"
[ "$bad" -eq 0 ] && [ "$test_status" -eq 0 ]
