#! /usr/bin/env atf-sh
#
# dtrace -l: the listing heading, the dtrace provider's probes (always IDs
# 1-3) and matching by description.

. "$(atf_get_srcdir)/common.subr"

# The heading and dtrace-provider rows in FreeBSD's "%5s %10s %17s %33s %s".
list_heading()
{
	printf '%5s %10s %17s %33s %s\n' ID PROVIDER MODULE FUNCTION NAME
}
list_row()
{
	printf '%5d %10s %17s %33s %s\n' "$1" "$2" "$3" "$4" "$5"
}

atf_test_case list_all
list_all_head()
{
	dtrace_head "-l prints the heading, then BEGIN, END and ERROR as probes 1-3"
}
list_all_body()
{
	dtrace_require
	{
		list_heading
		list_row 1 dtrace "" "" BEGIN
		list_row 2 dtrace "" "" END
		list_row 3 dtrace "" "" ERROR
	} > expout
	atf_check -s exit:0 -o save:listing -e empty "$DT" -l
	atf_check -o file:expout head -n 4 listing
}

atf_test_case list_heading_text
list_heading_text_head()
{
	dtrace_head "the -l heading has FreeBSD's exact column layout"
}
list_heading_text_body()
{
	dtrace_require
	atf_check -s exit:0 -o save:listing -e empty "$DT" -l
	atf_check -o inline:"   ID   PROVIDER            MODULE                          FUNCTION NAME\n" \
	    head -n 1 listing
}

atf_test_case list_by_name
list_by_name_head()
{
	dtrace_head "-l -n BEGIN lists exactly the BEGIN probe"
}
list_by_name_body()
{
	dtrace_require
	{ list_heading; list_row 1 dtrace "" "" BEGIN; } > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -l -n BEGIN
}

atf_test_case list_by_provider
list_by_provider_head()
{
	dtrace_head "-l -P dtrace lists the three dtrace provider probes"
}
list_by_provider_body()
{
	dtrace_require
	{
		list_heading
		list_row 1 dtrace "" "" BEGIN
		list_row 2 dtrace "" "" END
		list_row 3 dtrace "" "" ERROR
	} > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -l -P dtrace
}

atf_test_case list_by_id
list_by_id_head()
{
	dtrace_head "-l -i 2 lists probe 2, dtrace:::END"
}
list_by_id_body()
{
	dtrace_require
	{ list_heading; list_row 2 dtrace "" "" END; } > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -l -i 2
}

atf_test_case list_script
list_script_head()
{
	dtrace_head "-l -s lists the probes a script's clauses match"
}
list_script_body()
{
	dtrace_require
	printf 'dtrace:::END { }\ndtrace:::BEGIN { }\n' > prog.d
	{
		list_heading
		list_row 2 dtrace "" "" END
		list_row 1 dtrace "" "" BEGIN
	} > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -l -s prog.d
}

atf_test_case list_clause_once
list_clause_once_head()
{
	dtrace_head "-l lists a clause's probes once, also when if/else splits it"
}
list_clause_once_body()
{
	dtrace_require
	{
		list_heading
		list_row 1 dtrace "" "" BEGIN
		list_row 1 dtrace "" "" BEGIN
		list_row 2 dtrace "" "" END
	} > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -l \
	    -n 'BEGIN { if (1) { trace(1); } else { trace(2); } }' -n 'BEGIN, END { }'
}

atf_test_case list_no_match
list_no_match_head()
{
	dtrace_head "-l implies -Z: an unmatched description is reported, status 0"
}
list_no_match_body()
{
	dtrace_require
	list_heading > expout
	atf_check -s exit:0 -o file:expout \
	    -e match:"^dtrace: failed to match nosuch:::probe: " \
	    "$DT" -l -n nosuch:::probe
}

atf_test_case list_output_file
list_output_file_head()
{
	dtrace_head "-o sends the -l listing to a file"
}
list_output_file_body()
{
	dtrace_require
	{ list_heading; list_row 1 dtrace "" "" BEGIN; } > expout
	atf_check -s exit:0 -o empty -e empty "$DT" -l -n BEGIN -o listing
	atf_check -o file:expout cat listing
}

atf_test_case list_verbose
list_verbose_head()
{
	dtrace_head "-l -v follows each row with its stability attributes and argument types"
}
list_verbose_body()
{
	dtrace_require
	{
		list_heading
		list_row 1 dtrace "" "" BEGIN
		printf '\n\tProbe Description Attributes\n'
		printf '\t\tIdentifier Names: Stable\n'
		printf '\t\tData Semantics:   Stable\n'
		printf '\t\tDependency Class: Common\n'
		printf '\n\tArgument Attributes\n'
		printf '\t\tIdentifier Names: Stable\n'
		printf '\t\tData Semantics:   Stable\n'
		printf '\t\tDependency Class: Common\n'
		printf '\n\tArgument Types\n'
		printf '\t\tNone\n\n'
	} > expout
	atf_check -s exit:0 -o file:expout -e empty "$DT" -lv -n dtrace:::BEGIN
}

atf_test_case enable_by_id
enable_by_id_head()
{
	dtrace_head "-i enables the probe with that id (1 is dtrace:::BEGIN)"
}
enable_by_id_body()
{
	dtrace_require
	atf_check -s exit:0 -o inline:"begin\n\n" -e empty \
	    "$DT" -q -i '1 { printf("begin\n"); exit(0); }'
}

atf_test_case list_by_unknown_id
list_by_unknown_id_head()
{
	dtrace_head "-i with an id no probe has is an invalid probe specifier"
}
list_by_unknown_id_body()
{
	dtrace_require
	atf_check -s exit:1 -o empty \
	    -e match:"^dtrace: invalid probe specifier 4000000000: .*Unknown probe identifier" \
	    "$DT" -l -i 4000000000
}

atf_init_test_cases()
{
	atf_add_test_case list_all
	atf_add_test_case list_heading_text
	atf_add_test_case list_by_name
	atf_add_test_case list_by_provider
	atf_add_test_case list_by_id
	atf_add_test_case list_script
	atf_add_test_case list_clause_once
	atf_add_test_case list_no_match
	atf_add_test_case list_output_file
	atf_add_test_case list_verbose
	atf_add_test_case enable_by_id
	atf_add_test_case list_by_unknown_id
}
