//! The kernel-file sources over a fake linker: fbt enumerates every file's
//! functions under its module name and skips DTrace's own files; sdt finds
//! each file's linker sets.

mod common;

use common::MockHost;
use rdtrace_framework::platform::Errno;
use rdtrace_providers::fbt::isa::x86_64::X86_64;
use rdtrace_providers::fbt::FbtProvider;
use rdtrace_providers::glue::{FbtSource, SdtSource};
use rdtrace_providers::linker_files::{KernelFiles, LinkerFile, LinkerFiles};
use rdtrace_providers::sdt::layout::SdtProbe;
use rdtrace_providers::text::TextWriter;
use rdtrace_providers::{sdt_probe_define, sdt_provider_define};

sdt_provider_define!(pub LFPROV, "lfprov");
sdt_probe_define!(pub LF_PROBE, LFPROV, "", "f", "hit", ["int"]);

extern "C" {
    static __start_set_sdt_probes_set: *const SdtProbe;
    static __stop_set_sdt_probes_set: *const SdtProbe;
}

const BASE: u64 = 0x40_0000;

/// push %rbp; pop %rbp; ret — three copies, one per function.
fn code() -> Vec<u8> {
    [0x55u8, 0x5d, 0xc3].repeat(3)
}

struct Text(Vec<u8>);

impl TextWriter for Text {
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = addr.checked_sub(BASE).ok_or(Errno::EFAULT)? as usize;
        buf.copy_from_slice(self.0.get(off..off + buf.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    unsafe fn write_text(&self, _addr: u64, _bytes: &[u8]) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }
}

struct FakeLinker;

impl LinkerFiles for FakeLinker {
    fn files(&self) -> Vec<LinkerFile> {
        vec![LinkerFile(1), LinkerFile(2), LinkerFile(3)]
    }
    fn name(&self, file: LinkerFile) -> String {
        ["kernel", "dtrace.ko", "foo.ko"][file.0 - 1].to_string()
    }
    fn functions(&self, file: LinkerFile, f: &mut dyn FnMut(&str, u64, u64)) {
        match file.0 {
            1 => f("vm_fault", BASE, 3),
            2 => f("dtrace_probe", BASE + 3, 3),
            _ => f("foo_ioctl", BASE + 6, 3),
        }
    }
    fn lookup_set(&self, file: LinkerFile, set: &str) -> Option<(usize, usize)> {
        if file.0 != 3 || set != "set_sdt_probes_set" {
            return None;
        }
        let start = &raw const __start_set_sdt_probes_set as usize;
        let stop = &raw const __stop_set_sdt_probes_set as usize;
        Some((start, (stop - start) / 8))
    }
}

#[test]
fn fbt_enumerates_files_by_module() {
    let host = MockHost::leaked(1);
    let text: &'static Text = Box::leak(Box::new(Text(code())));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, text);
    let files = KernelFiles { linker: FakeLinker };
    FbtSource::<X86_64>::provide_all(&files, &fbt);
    let names: Vec<String> = host
        .probes
        .lock()
        .unwrap()
        .iter()
        .map(|p| format!("{}:{}:{}", p.module, p.function, p.name))
        .collect();
    assert_eq!(
        names,
        vec![
            "kernel:vm_fault:entry",
            "kernel:vm_fault:return",
            "foo:foo_ioctl:entry",
            "foo:foo_ioctl:return"
        ]
    );
}

#[test]
fn sdt_finds_each_files_sets() {
    let files = KernelFiles { linker: FakeLinker };
    let mut seen = Vec::new();
    files.for_each_file(&mut |sets| {
        // SAFETY: the sets are this binary's own.
        let found = unsafe { rdtrace_providers::sdt::discover(sets) };
        seen.extend(
            found
                .into_iter()
                .map(|p| format!("{}:{}:{}:{}", p.provider, p.module, p.function, p.name)),
        );
        assert!(
            sets.providers.is_empty() && sets.tracepoints.is_empty(),
            "sets the linker did not report are empty"
        );
    });
    assert_eq!(seen, vec!["lfprov:foo:f:hit"]);
    assert_eq!(LF_PROBE.n_args, 1);
}
