//! Tier 2: the consumer's ioctl client against the hosted kernel.

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
