#! /usr/bin/env atf-sh
#
# The profile provider's tick-<rate> probes: a timed exit, and counting
# firings. Skipped cleanly where no tick probe is offered.

. "$(atf_get_srcdir)/common.subr"

require_tick()
{
	dtrace_has_probe "$1" ||
	    atf_skip "dtrace -l -n $1 lists no probe (no profile provider)"
}

atf_test_case tick_exit
tick_exit_head()
{
	dtrace_head "tick-1s fires about a second after tracing starts and can exit()"
}
tick_exit_body()
{
	dtrace_require
	require_tick tick-1s
	start=$(date +%s)
	atf_check -s exit:0 -o inline:"tick\n\n" -e empty \
	    "$DT" -q -n 'tick-1s { printf("tick\n"); exit(0); }'
	elapsed=$(( $(date +%s) - start ))
	[ "$elapsed" -le 10 ] ||
	    atf_fail "tick-1s took ${elapsed}s to fire"
}

atf_test_case tick_listed
tick_listed_head()
{
	dtrace_head "-l -n tick-1s lists a profile provider probe named tick-1s"
}
tick_listed_body()
{
	dtrace_require
	require_tick tick-1s
	atf_check -s exit:0 \
	    -o match:'^ *[0-9]+ +profile +tick-1s$' -e empty \
	    "$DT" -l -n tick-1s
}

atf_test_case tick_count
tick_count_head()
{
	dtrace_head "tick-100hz fires repeatedly; a count() aggregates the firings"
}
tick_count_body()
{
	dtrace_require
	require_tick tick-100hz
	# Count the first 10 firings only (more may fire before tracing
	# stops), then exit: the count printed at the end is exactly 10.
	printf '\n %16d\n' 10 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'tick-100hz /i < 10/ { @n = count(); i++; }
	    tick-100hz /i == 10/ { exit(0); }'
}

atf_test_case tick_end_order
tick_end_order_head()
{
	dtrace_head "BEGIN, then the tick, then END, in that order"
}
tick_end_order_body()
{
	dtrace_require
	require_tick tick-1s
	atf_check -s exit:0 -o inline:"begin\ntick\nend\n\n" -e empty \
	    "$DT" -q -n 'BEGIN { printf("begin\n"); }
	    tick-1s { printf("tick\n"); exit(0); }
	    END { printf("end\n"); }'
}

atf_init_test_cases()
{
	atf_add_test_case tick_listed
	atf_add_test_case tick_exit
	atf_add_test_case tick_count
	atf_add_test_case tick_end_order
}
