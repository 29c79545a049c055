#! /usr/bin/env atf-sh
#
# dtrace -v without -l: the stability report printed for each program
# ("Stability attributes for ..."), when it is enabled and under -e.

. "$(atf_get_srcdir)/common.subr"

# One attribute triple as dtrace(1) indents it.
triple()
{
	printf '\t\tIdentifier Names: %s\n' "$1"
	printf '\t\tData Semantics:   %s\n' "$2"
	printf '\t\tDependency Class: %s\n' "$3"
}

# The report head: $1 kind, $2 name, then the description and statement
# triples.
report()
{
	printf '\nStability attributes for %s %s:\n' "$1" "$2"
	printf '\n\tMinimum Probe Description Attributes\n'
	triple "$3" "$4" "$5"
	printf '\n\tMinimum Statement Attributes\n'
	triple "$6" "$7" "$8"
}

atf_test_case enabled_description
enabled_description_head()
{
	dtrace_head "-v reports an enabled -n program: an unnamed provider is Unstable, pid and exit() Stable"
}
enabled_description_body()
{
	dtrace_require
	{
		report description BEGIN Unstable Unstable Common Stable Stable Common
		printf '\n'
		# exit(0) under -q: dtrace's closing newline.
		printf '\n'
	} > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -q -v -n 'BEGIN/pid != 0/{exit(0)}'
}

atf_test_case compile_only_named_provider
compile_only_named_provider_head()
{
	dtrace_head "-e -v: a named provider gives its own attributes; curthread has Private data"
}
compile_only_named_provider_body()
{
	dtrace_require
	{
		report description dtrace:::BEGIN Stable Stable Common Stable Private Common
		printf '\ndtrace:::BEGIN\n'
		printf '\n\tProbe Description Attributes\n'
		triple Stable Stable Common
		printf '\n\tArgument Attributes\n'
		triple Stable Stable Common
		printf '\n\tArgument Types\n\t\tNone\n\n'
	} > expout
	atf_check -s exit:0 -o file:expout -e empty \
	    "$DT" -e -v -n 'dtrace:::BEGIN{trace(curthread)}'
}

atf_test_case pragma_attributes
pragma_attributes_head()
{
	dtrace_head "#pragma D attributes lowers the statements that use the identifier"
}
pragma_attributes_body()
{
	dtrace_require
	cat > prog.d <<'EOF'
int lim;
#pragma D attributes Evolving/Unstable/ISA lim
BEGIN /lim == 0/ { trace(1); }
END { }
EOF
	report script prog.d Unstable Unstable Common Evolving Unstable ISA \
	    > expout
	atf_check -s exit:0 -o save:out -e empty "$DT" -e -v -s prog.d
	# The report comes first; each enabling's probe information follows.
	atf_check -o file:expout head -n 12 out
	atf_check -o inline:':::BEGIN\n:::END\n' grep '^:::' out
}

atf_test_case evolving_subroutine
evolving_subroutine_head()
{
	dtrace_head "an Evolving subroutine (htonl) lowers the statement attributes"
}
evolving_subroutine_body()
{
	dtrace_require
	report description 'dtrace:::END' Stable Stable Common \
	    Evolving Evolving Common > expout
	atf_check -s exit:0 -o save:out -e empty \
	    "$DT" -e -v -n 'dtrace:::END{trace(htonl(1))}'
	atf_check -o file:expout head -n 12 out
}

atf_init_test_cases()
{
	atf_add_test_case enabled_description
	atf_add_test_case compile_only_named_provider
	atf_add_test_case pragma_attributes
	atf_add_test_case evolving_subroutine
}
