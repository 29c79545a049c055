#! /usr/bin/env atf-sh
#
# Process control: -c runs a command, $target is its process ID, and dtrace
# exits once the command has exited.
# D programs are single-quoted on purpose: $1, $$2, $target are D macros.
# shellcheck disable=SC2016

. "$(atf_get_srcdir)/common.subr"

atf_test_case command_target
command_target_head()
{
	dtrace_head "-c runs the command with \$target set and exits when it exits"
}
command_target_body()
{
	dtrace_require
	true_bin=$(command -v true)
	[ -n "$true_bin" ] || atf_skip "no true(1) binary in PATH"
	# timeout(1) turns a dtrace that never notices the exit into status 124
	# rather than a hung test.
	atf_check -s exit:0 -o inline:"target 1\n\n" -e empty \
	    timeout 10 "$DT" -q -c "$true_bin" \
	    -n 'END { printf("target %d\n", $target > 0); }'
}

atf_test_case command_notice
command_notice_head()
{
	dtrace_head "without -q, the command's exit is reported on stderr"
}
command_notice_body()
{
	dtrace_require
	false_bin=$(command -v false)
	[ -n "$false_bin" ] || atf_skip "no false(1) binary in PATH"
	atf_check -s exit:0 -o ignore \
	    -e match:'^dtrace: pid [0-9]+ exited with status 1$' \
	    timeout 10 "$DT" -c "$false_bin" -n 'END { }'
}

atf_init_test_cases()
{
	atf_add_test_case command_target
	atf_add_test_case command_notice
}
