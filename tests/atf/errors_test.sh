#! /usr/bin/env atf-sh
#
# Compile errors: exit status 1, dtrace's "failed to compile script" and
# "invalid probe specifier" prefixes, line numbers, and the [D_*] tags that
# -x errtags adds.

. "$(atf_get_srcdir)/common.subr"

write_syntax_error()
{
	printf 'BEGIN\n{\n\tx = ;\n}\n' > bad.d
}

atf_test_case script_syntax_error
script_syntax_error_head()
{
	dtrace_head "a syntax error in a script names the file and line, exit 1"
}
script_syntax_error_body()
{
	dtrace_require
	write_syntax_error
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: failed to compile script bad\.d: line 3: syntax error near ";"$' \
	    "$DT" -s bad.d
}

atf_test_case script_errtags
script_errtags_head()
{
	dtrace_head "-x errtags puts the [D_SYNTAX] tag before the location"
}
script_errtags_body()
{
	dtrace_require
	write_syntax_error
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: failed to compile script bad\.d: \[D_SYNTAX\] line 3: ' \
	    "$DT" -x errtags -s bad.d
}

atf_test_case spec_undefined_variable
spec_undefined_variable_head()
{
	dtrace_head "an unknown identifier in -n is an invalid probe specifier, exit 1"
}
spec_undefined_variable_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: invalid probe specifier BEGIN \{ trace\(nosuchvar\); \}: .*failed to resolve nosuchvar: Unknown variable name$' \
	    "$DT" -n 'BEGIN { trace(nosuchvar); }'
}

atf_test_case spec_errtags
spec_errtags_head()
{
	dtrace_head "-x errtags tags an undefined identifier D_IDENT_UNDEF"
}
spec_errtags_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: invalid probe specifier BEGIN \{ trace\(nosuchvar\); \}: \[D_IDENT_UNDEF\] ' \
	    "$DT" -x errtags -n 'BEGIN { trace(nosuchvar); }'
}

atf_test_case no_matching_probe
no_matching_probe_head()
{
	dtrace_head "a description matching no probe is an error (D_PDESC_ZERO) without -Z"
}
no_matching_probe_body()
{
	dtrace_require
	printf 'BEGIN\n{\n\texit(0);\n}\n\nnosuch:::probe\n{\n}\n' > nomatch.d
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: failed to compile script nomatch\.d: \[D_PDESC_ZERO\] line [0-9]+: probe description nosuch:::probe does not match any probes$' \
	    "$DT" -x errtags -s nomatch.d
}

atf_test_case zdefs_permits_no_match
zdefs_permits_no_match_head()
{
	dtrace_head "-Z permits descriptions that match no probes"
}
zdefs_permits_no_match_body()
{
	dtrace_require
	printf 'BEGIN\n{\n\tprintf("ran\\n");\n\texit(0);\n}\n\nnosuch:::probe\n{\n}\n' > nomatch.d
	atf_check -s exit:0 -o inline:"ran\n\n" -e empty \
	    "$DT" -q -Z -s nomatch.d
}

atf_test_case wrong_argument_count
wrong_argument_count_head()
{
	dtrace_head "a subroutine called with too many arguments is a compile error"
}
wrong_argument_count_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: invalid probe specifier BEGIN \{ exit\(1, 2\); \}: \[D_PROTO_LEN\] ' \
	    "$DT" -x errtags -n 'BEGIN { exit(1, 2); }'
}

atf_test_case missing_script
missing_script_head()
{
	dtrace_head "a script file that does not exist fails with status 1"
}
missing_script_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:'^dtrace: failed to open no-such-file\.d: No such file or directory$' \
	    "$DT" -s no-such-file.d
}

atf_test_case runtime_fault
runtime_fault_head()
{
	dtrace_head "a fault in probe context is reported on stderr; tracing goes on"
}
runtime_fault_body()
{
	dtrace_require
	# The faulting clause is abandoned; the second BEGIN clause still runs.
	atf_check -s exit:0 -o inline:"\n" \
	    -e match:'^dtrace: error on enabled probe ID [0-9]+ \(ID 1: dtrace:::BEGIN\): invalid address \(0x0\) in action #1 at DIF offset [0-9]+$' \
	    timeout 20 "$DT" -q -n 'BEGIN { trace(*(int *)0); }' \
	    -n 'BEGIN { exit(0); }'
}

atf_test_case error_probe
error_probe_head()
{
	dtrace_head "a fault fires dtrace:::ERROR with the fault code (BADADDR = 1) in arg4"
}
error_probe_body()
{
	dtrace_require
	# Whether the default handler's message also appears depends on the
	# ERROR enablings' order relative to exit(), so stderr is not checked.
	atf_check -s exit:0 -o inline:"fault 1\n\n" -e ignore \
	    timeout 20 "$DT" -q -n 'BEGIN { trace(*(int *)0); }' \
	    -n 'ERROR { printf("fault %d\n", arg4); exit(0); }'
}

atf_test_case division_by_zero
division_by_zero_head()
{
	dtrace_head "a division by zero at run time is a 'divide-by-zero' fault"
}
division_by_zero_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"\n" \
	    -e match:'^dtrace: error on enabled probe ID [0-9]+ \(ID 1: dtrace:::BEGIN\): divide-by-zero in action #1 at DIF offset [0-9]+$' \
	    timeout 20 "$DT" -q -n 'BEGIN { y = 0; }
	    BEGIN { trace(1 / y); }
	    BEGIN { exit(0); }'
}

atf_init_test_cases()
{
	atf_add_test_case script_syntax_error
	atf_add_test_case script_errtags
	atf_add_test_case spec_undefined_variable
	atf_add_test_case spec_errtags
	atf_add_test_case no_matching_probe
	atf_add_test_case zdefs_permits_no_match
	atf_add_test_case wrong_argument_count
	atf_add_test_case missing_script
	atf_add_test_case runtime_fault
	atf_add_test_case error_probe
	atf_add_test_case division_by_zero
}
