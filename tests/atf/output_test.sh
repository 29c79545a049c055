#! /usr/bin/env atf-sh
#
# What dtrace(1) prints while running: the default CPU/ID/FUNCTION:NAME
# heading and probe lines, quiet mode, trace(), printf(), the "matched"
# notice, -o, and the exit() status.
# D programs are single-quoted on purpose: $1, $$2, $target are D macros.
# shellcheck disable=SC2016

. "$(atf_get_srcdir)/common.subr"

atf_test_case default_heading
default_heading_head()
{
	dtrace_head "without -q a heading and a per-probe prefix line are printed"
}
default_heading_body()
{
	dtrace_require
	atf_check -s exit:0 -o save:out -e ignore \
	    "$DT" -n 'BEGIN { trace("hello"); exit(0); }'
	# "%3s %6s %32s" heading, then "%3d %6d %32s " + trace's "  %-33s".
	atf_check -o inline:"CPU     ID                    FUNCTION:NAME\n" \
	    head -n 1 out
	atf_check -o match:"^ *[0-9]+      1                           :BEGIN   hello {28}$" \
	    sed -n 2p out
	# The end of the run always adds one empty line.
	atf_check -o inline:"3\n" awk 'END { print NR }' out
}

atf_test_case quiet_no_heading
quiet_no_heading_head()
{
	dtrace_head "-q prints only the traced data: no heading, prefix or notice"
}
quiet_no_heading_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"hello\n" -e empty \
	    "$DT" -q -n 'BEGIN { trace("hello"); exit(0); }'
}

atf_test_case quiet_pragma
quiet_pragma_head()
{
	dtrace_head "#pragma D option quiet in a script equals -q"
}
quiet_pragma_body()
{
	dtrace_require
	printf '#pragma D option quiet\nBEGIN { trace("hi"); exit(0); }\n' > prog.d
	atf_check -s exit:0 -o inline:"hi\n" -e empty "$DT" -s prog.d
}

atf_test_case quiet_x_option
quiet_x_option_head()
{
	dtrace_head "-x quiet equals -q"
}
quiet_x_option_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"hi\n" -e empty \
	    "$DT" -x quiet -n 'BEGIN { trace("hi"); exit(0); }'
}

atf_test_case trace_string_and_int
trace_string_and_int_head()
{
	dtrace_head "quiet trace() of a string and of an integer"
}
trace_string_and_int_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"hello42-7\n" -e empty \
	    "$DT" -q -n 'BEGIN { trace("hello"); trace(42); trace(-7); exit(0); }'
}

atf_test_case printf_basics
printf_basics_head()
{
	dtrace_head "printf() integer, string, width, flag and %% conversions"
}
printf_basics_body()
{
	dtrace_require
	atf_check -s exit:0 \
	    -o inline:"42|    7|7    |str|ab  |ff|10|A|%|3\n\n" -e empty \
	    "$DT" -q -n 'BEGIN {
		printf("%d|%5d|%-5d|%s|%-4s|%x|%o|%c|%%|%u\n",
		    42, 7, 7, "str", "ab", 255, 8, 65, 3);
		exit(0);
	}'
}

atf_test_case printf_variables
printf_variables_head()
{
	dtrace_head "printf() of global, thread-local and clause-local variables"
}
printf_variables_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"g=5 s=6 t=11 str=abc\n\n" -e empty \
	    "$DT" -q -n 'BEGIN {
		g = 5; self->s = 6; this->t = g + self->s; str = "abc";
		printf("g=%d s=%d t=%d str=%s\n", g, self->s, this->t, str);
		exit(0);
	}'
}

atf_test_case matched_notice
matched_notice_head()
{
	dtrace_head "the 'matched N probe(s)' notice names the description up to its clause"
}
matched_notice_body()
{
	dtrace_require
	atf_check -s exit:0 -o ignore \
	    -e inline:"dtrace: description 'BEGIN ' matched 1 probe\n" \
	    "$DT" -n 'BEGIN { exit(0); }'
}

atf_test_case matched_notice_script
matched_notice_script_head()
{
	dtrace_head "the notice for -s names the script and counts every probe"
}
matched_notice_script_body()
{
	dtrace_require
	printf 'BEGIN { exit(0); }\nEND { }\n' > prog.d
	atf_check -s exit:0 -o ignore \
	    -e inline:"dtrace: script 'prog.d' matched 2 probes\n" \
	    "$DT" -s prog.d
}

atf_test_case exit_status
exit_status_head()
{
	dtrace_head "dtrace exits with the value given to exit()"
}
exit_status_body()
{
	dtrace_require
	atf_check -s exit:3 -o inline:"\n" -e empty \
	    "$DT" -q -n 'BEGIN { exit(3); }'
	atf_check -s exit:0 -o inline:"\n" -e empty \
	    "$DT" -q -n 'BEGIN { exit(0); }'
}

atf_test_case end_exit_overrides
end_exit_overrides_head()
{
	dtrace_head "an exit() in END replaces the status an earlier exit() gave"
}
end_exit_overrides_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"\n" -e empty \
	    "$DT" -q -n 'BEGIN { exit(1); }' -n 'END { exit(0); }'
	atf_check -s exit:4 -o inline:"\n" -e empty \
	    "$DT" -q -n 'BEGIN { exit(0); }' -n 'END { exit(4); }'
}

atf_test_case destructive_notice
destructive_notice_head()
{
	dtrace_head "-w is announced once tracing starts (not under -q)"
}
destructive_notice_body()
{
	dtrace_require
	atf_check -s exit:0 -o ignore \
	    -e inline:"dtrace: description 'BEGIN ' matched 1 probe\ndtrace: allowing destructive actions\n" \
	    "$DT" -w -n 'BEGIN { exit(0); }'
	atf_check -s exit:0 -o inline:"\n" -e empty "$DT" -q -w -n 'BEGIN { exit(0); }'
}

atf_test_case stack_frames
stack_frames_head()
{
	dtrace_head "stack() prints one symbolized frame per line, 14 blanks in, then an empty line"
}
stack_frames_body()
{
	dtrace_require
	atf_check -s exit:0 -o save:out -e empty \
	    "$DT" -q -n 'BEGIN { stack(); exit(0); }'
	# An empty line, then frames "module`function+0xoffset" (or a bare
	# module`0xaddress / 0xaddress), all indented 14 blanks; the last line
	# is dtrace's closing newline.
	atf_check -o inline:"\n" head -n 1 out
	atf_check -o match:'^              [^ `]+`[^ ]+(\+0x[0-9a-f]+)?$' sed -n 2p out
	atf_check -o not-match:'^ {0,13}[^ ]' sed -e 1d -e '$d' out
}

atf_test_case end_after_exit
end_after_exit_head()
{
	dtrace_head "END fires after exit(), before dtrace exits with its status"
}
end_after_exit_body()
{
	dtrace_require
	atf_check -s exit:7 -o inline:"begin\nend\n\n" -e empty \
	    "$DT" -q -n 'BEGIN { printf("begin\n"); exit(7); }' \
	    -n 'END { printf("end\n"); }'
}

atf_test_case predicate
predicate_head()
{
	dtrace_head "a false predicate suppresses its clause"
}
predicate_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"yes\n\n" -e empty \
	    "$DT" -q -n 'BEGIN /1 == 2/ { printf("no\n"); }' \
	    -n 'BEGIN /2 == 2/ { printf("yes\n"); exit(0); }'
}

atf_test_case macro_arguments
macro_arguments_head()
{
	dtrace_head "operands after the program become \$1, \$2 (strings via \$\$1)"
}
macro_arguments_body()
{
	dtrace_require
	printf 'BEGIN { printf("%%d %%s\\n", $1 + 1, $$2); exit(0); }\n' > prog.d
	atf_check -s exit:0 -o inline:"42 word\n\n" -e empty \
	    "$DT" -q -s prog.d 41 word
}

atf_test_case output_file
output_file_head()
{
	dtrace_head "-o appends the traced output to a file"
}
output_file_body()
{
	dtrace_require
	echo "before" > out.txt
	atf_check -s exit:0 -o empty -e empty \
	    "$DT" -q -o out.txt -n 'BEGIN { printf("traced\n"); exit(0); }'
	atf_check -o inline:"before\ntraced\n\n" cat out.txt
}

atf_test_case flowindent
flowindent_head()
{
	dtrace_head "-F uses the CPU/FUNCTION heading and '| ' for non-entry probes"
}
flowindent_body()
{
	dtrace_require
	atf_check -s exit:0 -o save:out -e ignore \
	    "$DT" -F -n 'BEGIN { trace("x"); exit(0); }'
	# "%3s %-41s" heading; "%3d %-41s " lines with "| func:name".
	printf '%3s %-41s\n' CPU FUNCTION > expout
	atf_check -o file:expout head -n 1 out
	atf_check -o match:"^ *[0-9]+ \| :BEGIN {36}x {32}$" sed -n 2p out
}

atf_test_case oformat_json
oformat_json_head()
{
	dtrace_head "-x oformat=json writes a JSON document naming the probe"
}
oformat_json_body()
{
	dtrace_require
	atf_check -s exit:0 -o save:out -e empty \
	    "$DT" -q -x oformat=json -n 'BEGIN { trace("x"); exit(0); }'
	atf_check -o match:'^[[:space:]]*[{]' head -n 1 out
	atf_check -o match:'"name": *"BEGIN"' cat out
}

atf_test_case interrupt_runs_end
interrupt_runs_end_head()
{
	dtrace_head "an interrupt (SIGTERM) stops tracing: a newline, then END runs, then the final newline"
}
interrupt_runs_end_body()
{
	dtrace_require
	"$DT" -q -n 'BEGIN { printf("up\n"); }' -n 'END { printf("end\n"); }' \
	    > out 2> err &
	pid=$!
	# Interrupt only once tracing is under way (BEGIN has been printed).
	tries=0
	while ! grep -q up out 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			kill -9 "$pid" 2>/dev/null
			atf_fail "BEGIN output did not appear within 10 seconds"
		fi
		sleep 0.1
	done
	# SIGTERM, not SIGINT: a background job of a non-interactive shell
	# starts with SIGINT ignored, and dtrace(1) leaves ignored signals
	# alone. Both signals take the same path in dtrace.
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || atf_fail "dtrace exited with status $status after SIGTERM"
	atf_check -o inline:"up\n\nend\n\n" cat out
	atf_check -o empty cat err
}

atf_test_case ignored_sigint_stays_ignored
ignored_sigint_stays_ignored_head()
{
	dtrace_head "a SIGINT that was ignored when dtrace started does not stop it"
}
ignored_sigint_stays_ignored_body()
{
	dtrace_require
	# A background job of this non-interactive shell starts with SIGINT
	# ignored.
	"$DT" -q -n 'BEGIN { printf("up\n"); }' > out 2> err &
	pid=$!
	tries=0
	while ! grep -q up out 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			kill -9 "$pid" 2>/dev/null
			atf_fail "BEGIN output did not appear within 10 seconds"
		fi
		sleep 0.1
	done
	kill -INT "$pid"
	sleep 0.5
	if ! kill -0 "$pid" 2>/dev/null; then
		atf_fail "dtrace stopped on an ignored SIGINT"
	fi
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || atf_fail "dtrace exited with status $status after SIGTERM"
	atf_check -o inline:"up\n\n\n" cat out
}

atf_test_case second_interrupt_is_impatient
second_interrupt_is_impatient_head()
{
	dtrace_head "a second SIGTERM stops at once: no final aggregations, only the newlines"
}
second_interrupt_is_impatient_body()
{
	dtrace_require
	# system() runs in dtrace itself, so both signals reach it before the
	# work loop next looks at them; the pause keeps them from merging into
	# one pending signal.
	cat > prog.d <<'EOF'
#pragma D option quiet
BEGIN
{
	@counts["key"] = count();
	@total = sum(5);
	system("kill -TERM %d; sleep 0.3; kill -TERM %d", pid, pid);
}
EOF
	atf_check -s exit:0 -o inline:"\n\n" -e empty "$DT" -w -s prog.d
	# One interrupt alone still prints them.
	sed -e 's/; sleep 0.3; kill -TERM %d", pid, pid/", pid/' prog.d > once.d
	atf_check -s exit:0 -o save:out -e empty "$DT" -w -s once.d
	atf_check -o match:'^  key +1$' cat out
}

atf_init_test_cases()
{
	atf_add_test_case default_heading
	atf_add_test_case quiet_no_heading
	atf_add_test_case quiet_pragma
	atf_add_test_case quiet_x_option
	atf_add_test_case trace_string_and_int
	atf_add_test_case printf_basics
	atf_add_test_case printf_variables
	atf_add_test_case matched_notice
	atf_add_test_case matched_notice_script
	atf_add_test_case exit_status
	atf_add_test_case end_exit_overrides
	atf_add_test_case destructive_notice
	atf_add_test_case stack_frames
	atf_add_test_case end_after_exit
	atf_add_test_case predicate
	atf_add_test_case macro_arguments
	atf_add_test_case output_file
	atf_add_test_case flowindent
	atf_add_test_case oformat_json
	atf_add_test_case interrupt_runs_end
	atf_add_test_case ignored_sigint_stays_ignored
	atf_add_test_case second_interrupt_is_impatient
}
