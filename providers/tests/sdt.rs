//! SDT: probes declared with the crate's macros land in real ELF linker sets
//! of this test binary (read through the linker's `__start_`/`__stop_`
//! symbols), are discovered and named like FreeBSD's, fire through
//! `sdt_probe!` only while enabled, and tracepoints are hot-patched to jumps
//! that the fbt decoders (an independent reading) decode back to the
//! out-of-line target.

mod common;

use common::MockHost;
use rdtrace_framework::platform::Errno;
use rdtrace_providers::fbt::isa::aarch64::{A64Emulation, Aarch64};
use rdtrace_providers::fbt::isa::riscv64::{Riscv64, RvEmulation};
use rdtrace_providers::fbt::isa::x86_64::{X86Emulation, X86_64};
use rdtrace_providers::fbt::isa::Isa;
use rdtrace_providers::sdt::layout::{SdtArgType, SdtProbe, SdtProviderRecord, SdtTracepoint};
use rdtrace_providers::sdt::patch::{self, Arch};
use rdtrace_providers::sdt::{self, discover, LinkerSets, SdtProvider};
use rdtrace_providers::text::TextWriter;
use rdtrace_providers::{sdt_probe, sdt_probe_define, sdt_provider_define};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

sdt_provider_define!(pub TESTPROV, "rdtest");
sdt_provider_define!(pub OTHERPROV, "rdother");
sdt_probe_define!(pub PROBE_START, TESTPROV, "", "worker", "op__start", ["int", "const char *"]);
sdt_probe_define!(pub PROBE_DONE, TESTPROV, "mymod", "", "op__done", ["uint64_t"]);
sdt_probe_define!(pub PROBE_OTHER, OTHERPROV, "m", "f", "plain", []);

extern "C" {
    static __start_set_sdt_providers_set: *const SdtProviderRecord;
    static __stop_set_sdt_providers_set: *const SdtProviderRecord;
    static __start_set_sdt_probes_set: *const SdtProbe;
    static __stop_set_sdt_probes_set: *const SdtProbe;
    static __start_set_sdt_argtypes_set: *const SdtArgType;
    static __stop_set_sdt_argtypes_set: *const SdtArgType;
}

fn set<T>(start: *const T, stop: *const T) -> &'static [T] {
    let n = (stop as usize - start as usize) / std::mem::size_of::<T>();
    // SAFETY: the linker bounds the section with these two symbols.
    unsafe { std::slice::from_raw_parts(start, n) }
}

fn own_sets() -> LinkerSets<'static> {
    LinkerSets {
        file_name: "sdt-test.ko",
        providers: set(
            &raw const __start_set_sdt_providers_set,
            &raw const __stop_set_sdt_providers_set,
        ),
        probes: set(
            &raw const __start_set_sdt_probes_set,
            &raw const __stop_set_sdt_probes_set,
        ),
        argtypes: set(
            &raw const __start_set_sdt_argtypes_set,
            &raw const __stop_set_sdt_argtypes_set,
        ),
        tracepoints: &[],
    }
}

/// The tests share the probe records and the global enabled count: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Code memory in a buffer.
struct BufferText {
    base: u64,
    bytes: Mutex<Vec<u8>>,
}

impl TextWriter for BufferText {
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = (addr - self.base) as usize;
        buf.copy_from_slice(&self.bytes.lock().unwrap()[off..off + buf.len()]);
        Ok(())
    }
    unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let off = (addr.checked_sub(self.base).ok_or(Errno::EFAULT)?) as usize;
        let mut mem = self.bytes.lock().unwrap();
        mem.get_mut(off..off + bytes.len())
            .ok_or(Errno::EFAULT)?
            .copy_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn linker_sets_are_discovered_with_freebsd_names() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sets = own_sets();
    assert_eq!(sets.providers.len(), 2);
    assert_eq!(sets.probes.len(), 3);
    assert_eq!(sets.argtypes.len(), 3);
    // SAFETY: these are this binary's own linker sets.
    let mut found = unsafe { discover(&sets) };
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = found
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}:{}/{}",
                p.provider, p.module, p.function, p.name, p.n_args
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "rdtest:mymod:none:op-done/1",
            "rdtest:sdt-test:worker:op-start/2",
            "rdother:m:f:plain/0"
        ]
    );
    let start = found.iter().find(|p| p.name == "op-start").unwrap();
    assert_eq!(start.record, &PROBE_START as *const SdtProbe as usize);
    // SAFETY: as above.
    unsafe {
        assert_eq!(sdt::argtype(&sets, start.record, 0), Some(("int", "")));
        assert_eq!(
            sdt::argtype(&sets, start.record, 1),
            Some(("const char *", ""))
        );
        assert_eq!(sdt::argtype(&sets, start.record, 2), None);
    }
    assert_eq!(sdt::dtrace_name("a__b__c_d"), "a-b-c_d");
}

#[test]
fn own_probes_fire_only_while_enabled() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let host = MockHost::leaked(1);
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: 0,
        bytes: Mutex::new(vec![]),
    }));
    sdt::set_own_host(Some(Box::leak(Box::new(sdt::OwnHost(host)))));
    let provider = SdtProvider::new("rdtest", host, text, Arch::X86_64);
    provider.set_handle(9);
    // SAFETY: this binary's own linker sets, alive for the whole run.
    assert_eq!(unsafe { provider.provide_file(&own_sets()) }, 2);
    // SAFETY: as above.
    let again = unsafe { provider.provide_file(&own_sets()) };
    assert_eq!(again, 0, "no duplicates");
    let id = host.id_of("op-start");
    assert_eq!(
        host.probe(id).parg,
        &PROBE_START as *const SdtProbe as usize
    );

    let evaluated = std::cell::Cell::new(0);
    let site = |x: u64| {
        sdt_probe!(
            PROBE_START,
            {
                evaluated.set(evaluated.get() + 1);
                x
            },
            0x55
        );
    };
    site(1);
    assert!(host.take_fired().is_empty());
    assert_eq!(
        evaluated.get(),
        0,
        "arguments are not evaluated while disabled"
    );
    static OPENS: AtomicUsize = AtomicUsize::new(0);
    static CLOSES: AtomicUsize = AtomicUsize::new(0);
    sdt::set_gate_hook(Some(|open| {
        let counter = if open { &OPENS } else { &CLOSES };
        counter.fetch_add(1, SeqCst);
    }));
    let before = sdt::enabled_probe_count();
    provider.enable(id, host.probe(id).parg).unwrap();
    provider.enable(id, host.probe(id).parg).unwrap(); // idempotent
    assert_eq!(sdt::enabled_probe_count(), before + 1);
    assert_eq!(OPENS.load(SeqCst), usize::from(before == 0));
    assert_eq!(PROBE_START.enabled_id(), id);
    site(7);
    assert_eq!(host.take_fired(), vec![(id, [7, 0x55, 0, 0, 0], 0)]);
    provider.disable(id, host.probe(id).parg);
    assert_eq!(sdt::enabled_probe_count(), before);
    assert_eq!(CLOSES.load(SeqCst), usize::from(before == 0));
    sdt::set_gate_hook(None);
    site(8);
    assert!(host.take_fired().is_empty());
    // A parg the provider never created is refused.
    assert_eq!(
        provider.enable(1, &PROBE_OTHER as *const SdtProbe as usize),
        Err(Errno::EINVAL)
    );
}

/// Decode the jump an enabled tracepoint holds with the fbt decoders.
fn decoded_target(arch: Arch, site: u64, bytes: &[u8]) -> u64 {
    // Give the decoder a one-instruction "function" so any jump is outside it.
    match arch {
        Arch::X86_64 => {
            let mut t = None;
            X86_64::find_returns(bytes, site, &mut |s| t = Some(s.emulation));
            match t {
                Some(X86Emulation::Jmp(target)) => target,
                other => panic!("x86 decode: {other:?}"),
            }
        }
        Arch::Aarch64 => {
            let mut t = None;
            Aarch64::find_returns(bytes, site, &mut |s| t = Some(s.emulation));
            match t {
                Some(A64Emulation::B { target }) => target,
                other => panic!("arm64 decode: {other:?}"),
            }
        }
        Arch::Riscv64 => {
            let mut t = None;
            Riscv64::find_returns(bytes, site, &mut |s| t = Some(s.emulation));
            match t {
                Some(RvEmulation::Jump { target }) => target,
                other => panic!("riscv decode: {other:?}"),
            }
        }
    }
}

#[test]
fn tracepoints_are_hot_patched_per_arch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64] {
        let host = MockHost::leaked(1);
        let base = 0x10_0000u64;
        let nop = patch::disabled(arch);
        let mut code = Vec::new();
        for _ in 0..4 {
            code.extend_from_slice(nop.as_slice());
        }
        let text: &'static BufferText = Box::leak(Box::new(BufferText {
            base,
            bytes: Mutex::new(code.clone()),
        }));
        let len = arch.site_len() as u64;
        // Two tracepoints of PROBE_DONE, one of PROBE_START; out-of-line
        // blocks before and after the sites.
        let tps: &'static [SdtTracepoint] = Box::leak(Box::new([
            SdtTracepoint {
                probe: &PROBE_DONE,
                patchpoint: base as usize,
                target: (base + 0x800) as usize,
                link: Default::default(),
            },
            SdtTracepoint {
                probe: &PROBE_START,
                patchpoint: (base + len) as usize,
                target: (base - 0x400) as usize,
                link: Default::default(),
            },
            SdtTracepoint {
                probe: &PROBE_DONE,
                patchpoint: (base + 2 * len) as usize,
                target: (base - 0x1000) as usize,
                link: Default::default(),
            },
        ]));
        let sets = LinkerSets {
            tracepoints: tps,
            ..own_sets()
        };
        let provider = SdtProvider::new("rdtest", host, text, arch);
        // SAFETY: the records are this binary's statics and leaked tracepoints.
        unsafe { provider.provide_file(&sets) };
        let done = host.id_of("op-done");
        provider.enable(done, host.probe(done).parg).unwrap();
        let mem = text.bytes.lock().unwrap().clone();
        let at = |i: u64| &mem[(i * len) as usize..((i + 1) * len) as usize];
        assert_eq!(decoded_target(arch, base, at(0)), base + 0x800, "{arch:?}");
        assert_eq!(
            at(1),
            nop.as_slice(),
            "{arch:?}: another probe's site is untouched"
        );
        assert_eq!(
            decoded_target(arch, base + 2 * len, at(2)),
            base - 0x1000,
            "{arch:?}"
        );
        provider.disable(done, host.probe(done).parg);
        assert_eq!(
            *text.bytes.lock().unwrap(),
            code,
            "{arch:?}: disable restores the NOPs exactly"
        );
        assert_eq!(PROBE_DONE.enabled_id(), 0);
    }
}

#[test]
fn destroyed_probes_are_created_again_and_enabled_ones_pin_their_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let host = MockHost::leaked(1);
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: 0,
        bytes: Mutex::new(vec![]),
    }));
    let provider = SdtProvider::new("rdother", host, text, Arch::X86_64);
    provider.set_handle(4);
    // SAFETY: this binary's own linker sets, alive for the whole run.
    assert_eq!(unsafe { provider.provide_file(&own_sets()) }, 1);
    let record = &PROBE_OTHER as *const SdtProbe as usize;
    let id = host.id_of("plain");
    provider.enable(id, record).unwrap();
    assert!(provider.enabled_in(record, record + 1));
    assert!(!provider.enabled_in(0, record), "range excludes the record");
    provider.disable(id, record);
    assert!(!provider.enabled_in(record, record + 1));
    // A file unload destroys the probe; loading it again recreates it.
    provider.destroy(id, record);
    // SAFETY: as above.
    assert_eq!(unsafe { provider.provide_file(&own_sets()) }, 1);
}
