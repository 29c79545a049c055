//! The consumer side shared by the conversation tests: the harness's
//! `/dev/dtrace/dtrace` as a libdtrace device, compiling D against the
//! module's probes, decoding every CPU's buffers, and unloading with the
//! leak checks. Host-side test code (not probe context).

use std::collections::HashMap;

use rdtrace_ffi::probe::ProbeDesc as KProbeDesc;
use rdtrace_koharness::kernel::{cpu, devfs, malloc, uaccess};
use rdtrace_koharness::kld::Kld;
use rdtrace_libdtrace::compiler::pdesc::{ProbeDesc as DProbeDesc, StaticProbes};
use rdtrace_libdtrace::compiler::{compile, CompileOptions, CompiledProgram};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::decode::{
    Action, AggregationMerger, DecodeError, FiredRecord, RecordDecoder,
};
use rdtrace_libdtrace::consumer::device::{Device, IoctlError};
use rdtrace_libdtrace::output::model::Record;

/// `/dev/dtrace/dtrace` of the harness as a libdtrace device.
pub struct HarnessDevice {
    pub file: devfs::DevFile,
}

impl Device for HarnessDevice {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), IoctlError> {
        match self.file.ioctl(u64::from(cmd), arg.as_mut_ptr() as u64) {
            0 => Ok(()),
            errno => Err(IoctlError { cmd, errno }),
        }
    }

    fn describe(&self) -> &str {
        "harness /dev/dtrace/dtrace"
    }

    fn is_hosted(&self) -> bool {
        false
    }

    /// The harness kernel's CPUs, not the host's.
    fn cpu_count(&self) -> u32 {
        u32::try_from(cpu::ncpu()).unwrap_or(u32::MAX)
    }
}

/// Load rdtrace.ko and open a consumer on it (None: module missing, skipped).
pub fn start(test: &str) -> Option<(Kld, Client)> {
    let bytes = super::ko_bytes(test)?;
    let kld = super::load_rdtrace(bytes);
    // The consumer passes pointers into its own heap inside ioctl arguments.
    uaccess::set_process_user_space(true);
    let file = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR)
        .unwrap_or_else(|e| panic!("open /dev/dtrace/dtrace: errno {e}"));
    Some((kld, Client::new(Box::new(HarnessDevice { file }))))
}

pub fn must<T>(what: &str, r: Result<T, IoctlError>) -> T {
    r.unwrap_or_else(|e| {
        panic!(
            "{what} failed: errno {} ({e}) — needs framework ioctl {what} in rdtrace.ko",
            e.errno
        )
    })
}

/// Every probe the module offers, as the compiler's matcher wants them.
pub fn probe_list(client: &Client) -> Vec<KProbeDesc> {
    must("DTRACEIOC_PROBES", client.probes(None))
}

pub fn compile_for(client: &Client, source: &str) -> CompiledProgram {
    let probes = probe_list(client)
        .iter()
        .map(|p| DProbeDesc {
            provider: p.provider_str().unwrap_or("").into(),
            module: p.module_str().unwrap_or("").into(),
            function: p.function_str().unwrap_or("").into(),
            name: p.name_str().unwrap_or("").into(),
        })
        .collect();
    let opts = CompileOptions {
        matcher: Some(Box::new(StaticProbes {
            probes,
            profile: true,
        })),
        ..CompileOptions::default()
    };
    compile(source, &opts).unwrap_or_else(|e| {
        let mut providers: Vec<String> = probe_list(client)
            .iter()
            .map(|p| p.provider_str().unwrap_or("").to_string())
            .collect();
        providers.sort();
        providers.dedup();
        panic!("compiling {source:?}: {e} — rdtrace.ko offers only the providers {providers:?}")
    })
}

/// Decode every CPU's principal buffer.
pub fn snapshot_records(client: &Client) -> Vec<FiredRecord> {
    let mut all = Vec::new();
    let mut eprobe = |epid: u32| {
        client
            .eprobe(epid)
            .map_err(|e| DecodeError(format!("EPROBE {epid}: {e}")))
    };
    let mut format = |f: u16| {
        client
            .format(f)
            .map_err(|e| DecodeError(format!("FORMAT {f}: {e}")))
    };
    for c in 0..cpu::ncpu() as u32 {
        let snap = match client.bufsnap(c, 4 << 20) {
            Ok(s) => s,
            Err(e) if e.errno == libc::ENOENT => continue,
            Err(e) => panic!("DTRACEIOC_BUFSNAP cpu {c}: errno {}", e.errno),
        };
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut |_| None,
        };
        let recs = decoder
            .decode(&snap.data, snap.desc.oldest as usize)
            .expect("decode principal buffer");
        all.extend(recs);
    }
    all
}

/// Integers traced by each record, in order.
pub fn traced_ints(recs: &[FiredRecord]) -> Vec<Vec<u64>> {
    recs.iter()
        .map(|r| {
            r.actions
                .iter()
                .filter_map(|a| match a {
                    Action::Record(Record::Int { bits, .. }) => Some(*bits),
                    _ => None,
                })
                .collect()
        })
        .filter(|v: &Vec<u64>| !v.is_empty())
        .collect()
}

/// Aggregation values by name, merged over CPUs (first value word).
pub fn aggregation_values(client: &Client, prog: &CompiledProgram) -> HashMap<String, i64> {
    let mut merger = AggregationMerger::default();
    let mut describe = |id: u32| {
        client
            .aggdesc(id)
            .map_err(|e| DecodeError(format!("AGGDESC {id}: {e}")))
    };
    for c in 0..cpu::ncpu() as u32 {
        match client.aggsnap(c, 1 << 20) {
            Ok(s) => merger
                .add_snapshot(&s.data, &mut describe, &|v| {
                    prog.aggregations
                        .iter()
                        .find(|a| u64::from(a.varid) == v)
                        .map(|a| a.name.clone())
                        .unwrap_or_default()
                })
                .expect("decode aggregation"),
            Err(e) if e.errno == libc::ENOENT => {}
            Err(e) => panic!("DTRACEIOC_AGGSNAP cpu {c}: errno {}", e.errno),
        }
    }
    merger
        .into_aggregations()
        .into_values()
        .map(|a| {
            (
                a.name.clone(),
                a.entries
                    .first()
                    .and_then(|e| e.value.first().copied())
                    .unwrap_or(0),
            )
        })
        .collect()
}

pub fn finish(mut kld: Kld, client: Client) {
    drop(client);
    uaccess::set_process_user_space(false);
    let report = kld.unload().expect("unload after the conversation");
    assert!(report.leaks.is_empty(), "{:?}", report.leaks);
    for (name, st) in malloc::stats() {
        println!(
            "koharness: after the conversation and unload: malloc type {name}: {} allocations, {} frees, {} live",
            st.allocations, st.frees, st.live
        );
        assert_eq!(
            st.live, 0,
            "malloc type {name} leaked {} allocations",
            st.live
        );
    }
}
