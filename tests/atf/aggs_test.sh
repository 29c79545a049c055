#! /usr/bin/env atf-sh
#
# Aggregations printed at the end of the run in FreeBSD's layout: scalar
# values " %16lld", string keys "  %-50s", entries sorted by value, and the
# quantize() histogram.

. "$(atf_get_srcdir)/common.subr"

atf_test_case count_scalar
count_scalar_head()
{
	dtrace_head "a keyless count() is printed once, as " %16lld""
}
count_scalar_body()
{
	dtrace_require
	# The end-of-run newline, then the aggregation.
	printf '\n %16d\n' 3 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'BEGIN { @n = count(); @n = count(); @n = count(); exit(0); }'
}

atf_test_case count_keyed_sorted
count_keyed_sorted_head()
{
	dtrace_head "count() by string key prints entries in ascending value order"
}
count_keyed_sorted_body()
{
	dtrace_require
	printf '\n  %-50s %16d\n  %-50s %16d\n  %-50s %16d\n' \
	    alpha 1 bravo 2 charlie 3 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'BEGIN {
		@c["charlie"] = count(); @c["bravo"] = count();
		@c["charlie"] = count(); @c["alpha"] = count();
		@c["bravo"] = count(); @c["charlie"] = count();
		exit(0);
	}'
}

atf_test_case count_keyed_sortkey
count_keyed_sortkey_head()
{
	dtrace_head "-x aggsortkey orders by key; aggsortrev reverses the order"
}
count_keyed_sortkey_body()
{
	dtrace_require
	prog='BEGIN {
		@c["b"] = count(); @c["a"] = count(); @c["a"] = count();
		@c["c"] = count(); @c["c"] = count(); @c["c"] = count();
		exit(0);
	}'
	printf '\n  %-50s %16d\n  %-50s %16d\n  %-50s %16d\n' \
	    a 2 b 1 c 3 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -x aggsortkey -n "$prog"
	printf '\n  %-50s %16d\n  %-50s %16d\n  %-50s %16d\n' \
	    c 3 a 2 b 1 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -x aggsortrev -n "$prog"
}

atf_test_case sum_min_max_avg
sum_min_max_avg_head()
{
	dtrace_head "sum(), min(), max() and avg() values (avg truncates)"
}
sum_min_max_avg_body()
{
	dtrace_require
	printf '\n %16d\n %16d\n %16d\n %16d\n' 15 -2 9 3 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'BEGIN {
		@s = sum(5); @s = sum(10);
		@mn = min(3); @mn = min(-2);
		@mx = max(9); @mx = max(4);
		@av = avg(2); @av = avg(5);
		exit(0);
	}'
}

atf_test_case quantize_histogram
quantize_histogram_head()
{
	dtrace_head "quantize() prints the power-of-two histogram with one empty row each side"
}
quantize_histogram_body()
{
	dtrace_require
	# 2 zeros, 6 ones, 19 twos: bars of 3, 9 and 28 '@' out of 40.
	{
		printf '\n\n'
		printf '%16s %41s %-9s\n' value \
		    "------------- Distribution -------------" count
		printf '%16d |%-40s %-9d\n' -1 "" 0
		printf '%16d |%-40s %-9d\n' 0 "@@@" 2
		printf '%16d |%-40s %-9d\n' 1 "@@@@@@@@@" 6
		printf '%16d |%-40s %-9d\n' 2 "@@@@@@@@@@@@@@@@@@@@@@@@@@@@" 19
		printf '%16d |%-40s %-9d\n' 4 "" 0
		printf '\n'
	} > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'BEGIN {
		@q = quantize(0); @q = quantize(0);
		@q = quantize(1); @q = quantize(1); @q = quantize(1);
		@q = quantize(1); @q = quantize(1); @q = quantize(1);
		i = 0;
	}
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(2); i++; }
	BEGIN /i < 19/ { @q = quantize(3); i++; }
	BEGIN { exit(0); }'
}

atf_test_case lquantize_histogram
lquantize_histogram_head()
{
	dtrace_head "lquantize() rows with the '< base' underflow label"
}
lquantize_histogram_body()
{
	dtrace_require
	{
		printf '\n\n'
		printf '%16s %41s %-9s\n' value \
		    "------------- Distribution -------------" count
		printf '%16s |%-40s %-9d\n' "< 0" "" 0
		printf '%16d |%-40s %-9d\n' 0 "@@@@@@@@@@@@@@@@@@@@" 1
		printf '%16d |%-40s %-9d\n' 10 "" 0
		printf '%16d |%-40s %-9d\n' 20 "@@@@@@@@@@@@@@@@@@@@" 1
		printf '%16d |%-40s %-9d\n' 30 "" 0
		printf '\n'
	} > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -n 'BEGIN {
		@l = lquantize(5, 0, 100, 10); @l = lquantize(25, 0, 100, 10);
		exit(0);
	}'
}

atf_test_case count_by_probename
count_by_probename_head()
{
	dtrace_head "an aggregation keyed by a built-in string variable (probename)"
}
count_by_probename_body()
{
	dtrace_require
	printf '\n  %-50s %16d\n  %-50s %16d\n' BEGIN 1 END 1 > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    timeout 20 "$DT" -q -n 'BEGIN, END { @[probename] = count(); }
	    BEGIN { exit(0); }'
}

atf_init_test_cases()
{
	atf_add_test_case count_scalar
	atf_add_test_case count_keyed_sorted
	atf_add_test_case count_keyed_sortkey
	atf_add_test_case sum_min_max_avg
	atf_add_test_case quantize_histogram
	atf_add_test_case lquantize_histogram
	atf_add_test_case count_by_probename
}
