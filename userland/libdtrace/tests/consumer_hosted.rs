//! Tier 2: the consumer's ioctl client against the hosted kernel.

mod common;

use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::device::HostedDevice;

fn client() -> Client {
    Client::new(Box::new(HostedDevice::open().expect("hosted kernel opens")))
}

#[test]
fn conf_reports_dif_version_and_register_counts() {
    let conf = client().conf().expect("CONF");
    assert_eq!(conf.difversion, 2);
    assert_eq!(conf.difintregs, 8);
    assert_eq!(conf.diftupregs, 8);
}

#[test]
fn dtrace_provider_probes_are_listed_first() {
    let probes = client().probes(None).expect("PROBES");
    let names: Vec<String> = probes
        .iter()
        .take(3)
        .map(|p| {
            format!(
                "{}:{}:{}:{}",
                p.provider_str().unwrap_or(""),
                p.module_str().unwrap_or(""),
                p.function_str().unwrap_or(""),
                p.name_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(names, ["dtrace:::BEGIN", "dtrace:::END", "dtrace:::ERROR"]);
    assert_eq!(probes[0].id, 1);
    assert_eq!(probes[2].id, 3);
}

#[test]
fn status_before_enabling_is_refused_with_enoent() {
    let c = client();
    assert!(c.device().is_hosted());
    let err = c.status().expect_err("STATUS while INACTIVE");
    assert_eq!(err.errno, libc::ENOENT);
}

/// Compile `source`, run it to completion on the hosted kernel and return
/// (stdout, stderr, exit status) as dtrace(1) would produce them.
fn run(source: &str) -> (String, String, Option<i32>) {
    common::run_quiet(source)
}

#[test]
fn printf_follows_the_d_type_and_exit_status_is_returned() {
    let (out, _, status) =
        run("BEGIN { x = (unsigned int)4294967295; y = -1; printf(\"%d %d\\n\", x, y); exit(7); }");
    assert_eq!(out, "4294967295 -1\n\n");
    assert_eq!(status, Some(7));
}

#[test]
fn aggregations_left_unprinted_are_printed_at_the_end() {
    let (out, _, status) = run(
        "BEGIN { @n[\"a\"] = count(); @n[\"a\"] = count(); @s = sum(40); @s = sum(2); exit(0); }",
    );
    assert_eq!(status, Some(0));
    assert!(
        out.contains(&format!("  {:<50} {:>16}\n", "a", 2)),
        "{out:?}"
    );
    assert!(out.contains(&format!("{:>17}\n", 42)), "{out:?}");
}

#[test]
fn printa_prints_running_totals_and_is_not_repeated_at_the_end() {
    let (out, _, _) = run(
        "BEGIN { @c[1] = count(); } BEGIN { @c[1] = count(); printa(\"%d:%@d\\n\", @c); exit(0); }",
    );
    assert_eq!(out.matches("1:2\n").count(), 1, "{out:?}");
    assert!(
        !out.contains("                2\n"),
        "printed again at the end: {out:?}"
    );
}

#[test]
fn run_time_faults_become_libdtrace_error_messages() {
    use rdtrace_libdtrace::compiler::{compile, CompileOptions};
    use rdtrace_libdtrace::consumer::session::{RunConfig, Session};
    use rdtrace_libdtrace::output::stack::NoSymbols;
    use rdtrace_libdtrace::output::text::TextOutput;
    use rdtrace_libdtrace::output::OutputOptions;

    let handler = compile(
        "dtrace:::ERROR { trace(arg1); trace(arg2); trace(arg3); trace(arg4); trace(arg5); }",
        &CompileOptions::default(),
    )
    .expect("handler compiles");
    let program = compile(
        "BEGIN { x = 0; trace(1 / x); } BEGIN { exit(0); }",
        &CompileOptions::default(),
    )
    .expect("compiles");
    let mut session = Session::new(client(), RunConfig::default(), Default::default());
    session.enable(&program.dof).expect("enables");
    session
        .enable_error_handler(&handler.dof)
        .expect("handler enables");
    let symbols = NoSymbols;
    let options = OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    };
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), options, &symbols);
    session.run(&mut sink, &|| false).expect("runs");
    let (_, err) = sink.into_inner();
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("error on enabled probe ID 1 (ID 1: dtrace:::BEGIN): divide-by-zero in action #2 at DIF offset"),
        "{err:?}"
    );
}

#[test]
fn printa_keeps_columns_for_aggregations_without_data() {
    // @b's clause never fires: its column prints count()'s zero.
    let (out, _, _) = run(
        "BEGIN /0/ { @b[1] = count(); } \
         BEGIN { @a[1] = sum(5); @c[1] = sum(7); printa(\"%d %@d %@d %@d\\n\", @a, @b, @c); exit(0); }",
    );
    assert!(out.starts_with("1 5 0 7\n"), "{out:?}");
}

#[test]
fn exit_in_end_overrides_an_earlier_exit() {
    let (_, _, status) = run("BEGIN { exit(1); } END { exit(0); }");
    assert_eq!(status, Some(0));
    let (_, _, status) = run("BEGIN { exit(0); } END { exit(5); }");
    assert_eq!(status, Some(5));
}

#[test]
fn probe_info_reports_provider_attributes_and_no_argument_types() {
    use rdtrace_ffi::attr::{Attribute, DepClass, Stability};
    use rdtrace_libdtrace::consumer::probeinfo::ProbeInfoSource;
    use rdtrace_libdtrace::output::listing;

    let c = client();
    let probes = c.probes(None).expect("PROBES");
    let begin = probes.first().expect("dtrace:::BEGIN");
    let mut source = ProbeInfoSource::new(&c);
    let info = source.info(begin).expect("dtrace provider is known");
    let stable = Attribute::new(Stability::Stable, Stability::Stable, DepClass::Common);
    // dtrace:::BEGIN names only its provider and probe name.
    assert_eq!(info.attributes, stable);
    assert_eq!(info.argument_attributes, stable);
    assert!(info.argument_types.is_empty());
    let block = listing::verbose_block(
        &info.attributes.into(),
        &info.argument_attributes.into(),
        &info.argument_types,
    );
    assert!(block.contains("\tArgument Types\n\t\tNone\n"), "{block}");
    // A provider the device does not know gives no report at all.
    let mut unknown = *begin;
    unknown.set_provider("nosuchprovider").unwrap();
    assert_eq!(source.info(&unknown), None);
}
