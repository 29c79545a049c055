#! /usr/bin/env atf-sh
#
# dtrace(1) command-line handling: -V, usage errors (exit status 2) and -e.

. "$(atf_get_srcdir)/common.subr"

atf_test_case version
version_head()
{
	dtrace_head "-V prints the D version FreeBSD's dtrace reports and exits 0"
}
version_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"dtrace: Sun D 1.13\n" -e empty "$DT" -V
}

atf_test_case version_with_list
version_with_list_head()
{
	dtrace_head "-V and -l together are a usage error (only one of -AGhlV)"
}
version_with_list_body()
{
	dtrace_require
	atf_check -s exit:2 -o empty \
	    -e inline:"dtrace: only one of the [-AGhlV] options can be specified at a time\n" \
	    "$DT" -V -l
}

atf_test_case illegal_option
illegal_option_head()
{
	dtrace_head "an unknown option is reported, followed by the usage text, exit 2"
}
illegal_option_body()
{
	dtrace_require
	atf_check -s exit:2 -o empty \
	    -e match:"^dtrace: illegal option -- k$" \
	    -e match:"^Usage: dtrace " \
	    -e match:"-n \[\[\[ provider: \] module: \] func: \] name \[\[ predicate \] action \]\]" \
	    "$DT" -k
}

atf_test_case no_arguments
no_arguments_head()
{
	dtrace_head "dtrace with no arguments prints the usage text and exits 2"
}
no_arguments_body()
{
	dtrace_require
	atf_check -s exit:2 -o empty -e match:"^Usage: dtrace " "$DT"
}

atf_test_case missing_option_argument
missing_option_argument_head()
{
	dtrace_head "an option missing its argument (-n) is a usage error"
}
missing_option_argument_body()
{
	dtrace_require
	atf_check -s exit:2 -o empty \
	    -e match:"^dtrace: option requires an argument -- n$" \
	    -e match:"^Usage: dtrace " "$DT" -n
}

atf_test_case compile_only
compile_only_head()
{
	dtrace_head "-e compiles the program but never enables it"
}
compile_only_body()
{
	dtrace_require
	# Were BEGIN enabled, "ran" would be printed and the status would be 5.
	atf_check -s exit:0 -o empty -e empty \
	    "$DT" -e -n 'BEGIN { trace("ran"); exit(5); }'
}

atf_test_case compile_only_script
compile_only_script_head()
{
	dtrace_head "-e with -s compiles a script file without running it"
}
compile_only_script_body()
{
	dtrace_require
	cat > prog.d <<'D'
#pragma D option quiet
BEGIN
{
	printf("ran\n");
	exit(4);
}
D
	atf_check -s exit:0 -o empty -e empty "$DT" -e -s prog.d
}

atf_test_case compile_only_error
compile_only_error_head()
{
	dtrace_head "-e still reports compile errors with exit status 1"
}
compile_only_error_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:"^dtrace: invalid probe specifier BEGIN \{ trace\(no_such_variable\); \}: .*no_such_variable" \
	    "$DT" -e -n 'BEGIN { trace(no_such_variable); }'
}

atf_test_case bad_x_option
bad_x_option_head()
{
	dtrace_head "-x with an unknown option name fails with status 1"
}
bad_x_option_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e inline:"dtrace: failed to set -x no_such_option: Invalid option name\n" \
	    "$DT" -x no_such_option -n 'BEGIN { exit(0); }'
}

atf_test_case empty_x_option
empty_x_option_head()
{
	dtrace_head "-x with an empty option name is an invalid option name, status 1"
}
empty_x_option_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e inline:"dtrace: failed to set -x : Invalid option name\n" \
	    "$DT" -x '' -n 'BEGIN { exit(0); }'
	atf_check -s exit:1 -o empty \
	    -e inline:"dtrace: failed to set -x : Invalid option name\n" \
	    "$DT" -x =4 -n 'BEGIN { exit(0); }'
}

atf_test_case bad_x_value
bad_x_value_head()
{
	dtrace_head "-x with an invalid value (bufpolicy=sideways) fails with status 1"
}
bad_x_value_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e inline:"dtrace: failed to set -x bufpolicy: Invalid value for specified option\n" \
	    "$DT" -x bufpolicy=sideways -n 'BEGIN { exit(0); }'
}

atf_test_case x_options_accepted
x_options_accepted_head()
{
	dtrace_head "common -x tunables are accepted and the program still runs"
}
x_options_accepted_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"ok\n\n" -e empty \
	    "$DT" -q -x bufsize=1m -x bufpolicy=fill -x switchrate=10hz \
	    -x aggrate=10hz -x statusrate=1hz -x strsize=256 -x nspec=2 \
	    -x specsize=64k -x dynvarsize=1m -b 2m \
	    -n 'BEGIN { printf("ok\n"); exit(0); }'
}

atf_test_case dif_listing
dif_listing_head()
{
	dtrace_head "-S prints each DIF object on stderr as it is compiled"
}
dif_listing_body()
{
	dtrace_require
	atf_check -s exit:0 -o empty \
	    -e match:'^DIFO 0x[0-9a-f]+ returns ' \
	    -e match:'^OFF OPCODE      INSTRUCTION$' \
	    -e match:'^00: [0-9a-f]{8}    ' \
	    -e match:'ret +%r[0-9]' \
	    "$DT" -S -e -n 'BEGIN { exit(0); }'
}

atf_test_case cpp_define
cpp_define_head()
{
	dtrace_head "-C runs the preprocessor, with macros from -D"
	atf_set require.progs cpp
}
cpp_define_body()
{
	dtrace_require
	cat > prog.d <<'D'
#ifdef WANTED
BEGIN { printf("%d\n", VAL); exit(0); }
#else
BEGIN { printf("undefined\n"); exit(0); }
#endif
D
	atf_check -s exit:0 -o inline:"5\n\n" -e empty \
	    "$DT" -q -C -D WANTED -D VAL=5 -s prog.d
	atf_check -s exit:0 -o inline:"undefined\n\n" -e empty \
	    "$DT" -q -C -s prog.d
}

atf_test_case x_strsize
x_strsize_head()
{
	dtrace_head "-x strsize bounds the strings a program stores"
}
x_strsize_body()
{
	dtrace_require
	prog='BEGIN { s = "hello"; printf("%s|\n", s); exit(0); }'
	atf_check -s exit:0 -o inline:"hello|\n\n" -e empty \
	    "$DT" -q -x strsize=6 -n "$prog"
	# Whether the limit counts the terminating NUL differs between DTrace
	# implementations; either way the string is cut to "hel" or "hell".
	atf_check -s exit:0 -o match:'^hell?[|]$' -e empty \
	    "$DT" -q -x strsize=4 -n "$prog"
}

atf_init_test_cases()
{
	atf_add_test_case version
	atf_add_test_case version_with_list
	atf_add_test_case illegal_option
	atf_add_test_case no_arguments
	atf_add_test_case missing_option_argument
	atf_add_test_case compile_only
	atf_add_test_case compile_only_script
	atf_add_test_case compile_only_error
	atf_add_test_case bad_x_option
	atf_add_test_case empty_x_option
	atf_add_test_case bad_x_value
	atf_add_test_case x_options_accepted
	atf_add_test_case dif_listing
	atf_add_test_case cpp_define
	atf_add_test_case x_strsize
}
