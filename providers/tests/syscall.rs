//! The syscall provider against a recording host and a fake system call
//! table: probe naming, parg encoding, enable/disable writing the table's
//! probe ids and hook, and firing from both the typed entry points and a raw
//! `struct syscall_args`.

mod common;

use common::MockHost;
use rdtrace_providers::syscall::{
    Site, SyscallProvider, SyscallTable, ENTRY_FLAG, KIND_ENTRY, KIND_RETURN,
};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

struct FakeTable {
    names: Vec<&'static str>,
    entry: Vec<AtomicU32>,
    ret: Vec<AtomicU32>,
    hook: AtomicBool,
}

impl SyscallTable for FakeTable {
    fn len(&self) -> usize {
        self.names.len()
    }
    fn name(&self, n: usize) -> Option<&str> {
        self.names.get(n).copied()
    }
    fn set_probe_id(&self, n: usize, site: Site, id: u32) {
        let v = if site == Site::Entry {
            &self.entry
        } else {
            &self.ret
        };
        v[n].store(id, Ordering::SeqCst);
    }
    fn set_hook(&self, on: bool) {
        self.hook.store(on, Ordering::SeqCst);
    }
}

fn setup() -> (&'static MockHost, &'static FakeTable, SyscallProvider) {
    let host = MockHost::leaked(1);
    let names = vec!["syscall", "exit", "fork", "read", "write", "", "close"];
    let table: &'static FakeTable = Box::leak(Box::new(FakeTable {
        entry: names.iter().map(|_| AtomicU32::new(0)).collect(),
        ret: names.iter().map(|_| AtomicU32::new(0)).collect(),
        names,
        hook: AtomicBool::new(false),
    }));
    let provider = SyscallProvider::new(host, table);
    provider.set_handle(5);
    provider.provide();
    (host, table, provider)
}

#[test]
fn probes_per_named_syscall() {
    let (host, _, provider) = setup();
    provider.provide(); // no duplicates
    let probes = host.probes.lock().unwrap().clone();
    assert_eq!(probes.len(), 12);
    let read_entry = probes
        .iter()
        .find(|p| p.function == "read" && p.name == "entry")
        .unwrap();
    assert_eq!(
        (
            read_entry.module.as_str(),
            read_entry.parg,
            read_entry.aframes,
            read_entry.provider
        ),
        ("freebsd", 3 | ENTRY_FLAG, 1, 5)
    );
    let close_ret = probes
        .iter()
        .find(|p| p.function == "close" && p.name == "return")
        .unwrap();
    assert_eq!(close_ret.parg, 6);
}

#[test]
fn enable_fire_disable() {
    let (host, table, provider) = setup();
    let write_entry = host.probe_lookup_id("write", "entry");
    let write_return = host.probe_lookup_id("write", "return");
    provider.enable(write_entry, host.probe(write_entry).parg);
    assert!(table.hook.load(Ordering::SeqCst));
    assert_eq!(table.entry[4].load(Ordering::SeqCst), write_entry);
    provider.enable(write_return, host.probe(write_return).parg);
    assert_eq!(table.ret[4].load(Ordering::SeqCst), write_return);
    assert_eq!(provider.enabled_count(), 2);

    provider.fire_entry(4, &[1, 0x1000, 12, 99, 98, 97]);
    provider.fire_entry(3, &[0, 0, 0]); // read is not enabled
    provider.fire_return(4, 12);
    provider.fire_return(4, -1);
    assert_eq!(
        host.take_fired()
            .into_iter()
            .map(|(id, a, _)| (id, a))
            .collect::<Vec<_>>(),
        vec![
            (write_entry, [1, 0x1000, 12, 99, 98]),
            (write_return, [12, 12, 0, 0, 0]),
            (write_return, [u64::MAX, u64::MAX, 0, 0, 0]),
        ]
    );

    // The raw kernel hook path: struct syscall_args { u32 code; u32 orig; ptr callp; u64 args[8]; }.
    let mut sa = [0u8; 80];
    sa[0..4].copy_from_slice(&4u32.to_le_bytes());
    for i in 0..8u64 {
        sa[16 + 8 * i as usize..24 + 8 * i as usize].copy_from_slice(&(100 + i).to_le_bytes());
    }
    // SAFETY: `sa` is an 80-byte syscall_args image.
    unsafe {
        provider.fire_from_syscall_args(sa.as_ptr(), KIND_ENTRY, 0);
        provider.fire_from_syscall_args(sa.as_ptr(), KIND_RETURN, 7);
    }
    assert_eq!(
        host.take_fired()
            .into_iter()
            .map(|(id, a, _)| (id, a))
            .collect::<Vec<_>>(),
        vec![
            (write_entry, [100, 101, 102, 103, 104]),
            (write_return, [7, 7, 0, 0, 0])
        ]
    );

    provider.disable(write_entry, host.probe(write_entry).parg);
    assert!(
        table.hook.load(Ordering::SeqCst),
        "return probe still enabled"
    );
    provider.disable(write_return, host.probe(write_return).parg);
    assert!(!table.hook.load(Ordering::SeqCst));
    assert_eq!(table.entry[4].load(Ordering::SeqCst), 0);
    assert_eq!(table.ret[4].load(Ordering::SeqCst), 0);
    provider.fire_entry(4, &[1]);
    assert!(host.take_fired().is_empty());
    // Out-of-range pargs and sysnums are ignored, never a panic.
    provider.enable(99, 5000 | ENTRY_FLAG);
    provider.fire_entry(5000, &[]);
    provider.fire_return(usize::MAX, 0);
    assert_eq!(provider.enabled_count(), 0);
}

trait LookupId {
    fn probe_lookup_id(&self, func: &str, name: &str) -> u32;
}

impl LookupId for MockHost {
    fn probe_lookup_id(&self, func: &str, name: &str) -> u32 {
        use rdtrace_providers::host::ProviderHost;
        self.probe_lookup(5, "freebsd", func, name)
    }
}

#[test]
fn freebsd_sysent_table_layout() {
    use rdtrace_providers::syscall::freebsd::{SysentTable, SYSENT_SIZE};
    // Three 32-byte sysent entries, 8-aligned.
    let sysent: &'static mut [u64] = Box::leak(vec![0u64; 3 * SYSENT_SIZE / 8].into_boxed_slice());
    let names: &'static [*const u8] = Box::leak(Box::new([
        c"syscall".as_ptr().cast(),
        std::ptr::null(),
        c"fork".as_ptr().cast(),
    ]));
    let probe_func: &'static mut usize = Box::leak(Box::new(0usize));
    let enabled: &'static mut u8 = Box::leak(Box::new(0u8));
    let sysent_addr = sysent.as_ptr() as usize;
    // SAFETY: all four objects are live for the rest of the test binary.
    let table = unsafe {
        SysentTable::new(
            sysent_addr,
            3,
            names.as_ptr() as usize,
            probe_func as *mut usize as usize,
            enabled as *mut u8 as usize,
            0xabcd,
        )
    };
    assert_eq!(
        (table.name(0), table.name(1), table.name(2), table.name(3)),
        (Some("syscall"), None, Some("fork"), None)
    );
    table.set_probe_id(2, Site::Entry, 0x1111);
    table.set_probe_id(2, Site::Return, 0x2222);
    table.set_probe_id(3, Site::Entry, 5); // out of range: ignored
    let bytes = |i: usize| -> u32 {
        // SAFETY: reading inside the leaked array.
        unsafe { std::ptr::read((sysent_addr + i) as *const u32) }
    };
    assert_eq!(bytes(2 * 32 + 20), 0x1111);
    assert_eq!(bytes(2 * 32 + 24), 0x2222);
    assert_eq!(bytes(32 + 20), 0);
    table.set_hook(true);
    // SAFETY: reading the leaked variables.
    unsafe {
        assert_eq!(std::ptr::read(probe_func as *const usize), 0xabcd);
        assert_eq!(std::ptr::read(enabled as *const u8), 1);
    }
    table.set_hook(false);
    // SAFETY: as above.
    unsafe { assert_eq!(std::ptr::read(enabled as *const u8), 0) };
}

/// A host whose `probe` asks the provider for arguments 5..7 while the
/// entry probe fires, as the framework's `getargval` does.
struct ArgsProbingHost {
    provider: std::sync::OnceLock<&'static SyscallProvider>,
    seen: std::sync::Mutex<Vec<(usize, Option<u64>)>>,
    parg: std::sync::atomic::AtomicUsize,
}

impl rdtrace_providers::host::ProviderHost for ArgsProbingHost {
    fn probe_create(&self, _: usize, _: &str, _: &str, _: &str, _: i32, _: usize) -> u32 {
        1
    }
    fn probe_lookup(&self, _: usize, _: &str, _: &str, _: &str) -> u32 {
        0
    }
    fn probe(&self, _id: u32, _args: [u64; 5]) {
        let provider = self.provider.get().expect("provider set");
        let parg = self.parg.load(Ordering::SeqCst);
        let mut seen = self.seen.lock().unwrap();
        for argno in [5, 6, 7, 8, -1] {
            seen.push((argno as usize, provider.arg_value(parg, argno)));
        }
    }
    fn cpu_count(&self) -> usize {
        2
    }
    fn cpu_id(&self) -> usize {
        1
    }
    fn sync(&self) {}
    fn monotonic_ns(&self) -> u64 {
        0
    }
    fn timer_create(
        &self,
        _: Option<usize>,
        _: u64,
        _: fn(usize),
        _: usize,
    ) -> Option<rdtrace_providers::host::TimerId> {
        None
    }
    fn timer_destroy(&self, _: rdtrace_providers::host::TimerId) {}
}

#[test]
fn arguments_beyond_the_fifth_come_from_the_firing_syscall_args() {
    let host: &'static ArgsProbingHost = Box::leak(Box::new(ArgsProbingHost {
        provider: std::sync::OnceLock::new(),
        seen: std::sync::Mutex::new(Vec::new()),
        parg: std::sync::atomic::AtomicUsize::new(3 | ENTRY_FLAG),
    }));
    let table: &'static FakeTable = Box::leak(Box::new(FakeTable {
        names: vec!["a", "b", "c", "mmap"],
        entry: (0..4).map(|_| AtomicU32::new(0)).collect(),
        ret: (0..4).map(|_| AtomicU32::new(0)).collect(),
        hook: AtomicBool::new(false),
    }));
    let provider: &'static SyscallProvider = Box::leak(Box::new(SyscallProvider::new(host, table)));
    host.provider.set(provider).ok().expect("set once");
    provider.enable(9, 3 | ENTRY_FLAG);
    let mut sa = [0u8; 80];
    sa[0..4].copy_from_slice(&3u32.to_le_bytes());
    for i in 0..8u64 {
        sa[16 + 8 * i as usize..24 + 8 * i as usize].copy_from_slice(&(500 + i).to_le_bytes());
    }
    // SAFETY: `sa` is an 80-byte syscall_args image.
    unsafe { provider.fire_from_syscall_args(sa.as_ptr(), KIND_ENTRY, 0) };
    assert_eq!(
        *host.seen.lock().unwrap(),
        vec![
            (5, Some(505)),
            (6, Some(506)),
            (7, Some(507)),
            (8, None),
            (usize::MAX, None)
        ]
    );
    // Outside a firing nothing is published; return probes never answer.
    assert_eq!(provider.arg_value(3 | ENTRY_FLAG, 5), None);
    assert_eq!(provider.arg_value(3, 5), None);
}

/// Leaked sysent and names arrays for one fake ABI: (sysent address, names
/// address).
fn fake_abi(names: &[&'static std::ffi::CStr]) -> (usize, usize) {
    use rdtrace_providers::syscall::freebsd::SYSENT_SIZE;
    let sysent: &'static mut [u64] =
        Box::leak(vec![0u64; names.len() * SYSENT_SIZE / 8].into_boxed_slice());
    let ptrs: &'static [*const u8] = Box::leak(
        names
            .iter()
            .map(|n| n.as_ptr().cast::<u8>())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    (sysent.as_ptr() as usize, ptrs.as_ptr() as usize)
}

#[test]
fn every_abi_gets_its_own_module_and_fires_through_its_sysent_entry() {
    use rdtrace_providers::syscall::freebsd::{SysentAbi, SysentTable, SYSENT_SIZE};
    let native_names = [c"syscall", c"exit", c"fork", c"read", c"write"];
    let compat_names = [
        c"syscall",
        c"exit",
        c"fork",
        c"read",
        c"write",
        c"freebsd32_mmap",
    ];
    let (native, native_names_addr) = fake_abi(&native_names);
    let (compat, compat_names_addr) = fake_abi(&compat_names);
    let probe_func: &'static mut usize = Box::leak(Box::new(0usize));
    let enabled: &'static mut u8 = Box::leak(Box::new(0u8));
    let abis = [
        SysentAbi {
            module: "freebsd",
            sysent: native,
            count: native_names.len(),
            names: native_names_addr,
        },
        SysentAbi {
            module: "freebsd32",
            sysent: compat,
            count: compat_names.len(),
            names: compat_names_addr,
        },
    ];
    // SAFETY: every array and variable is leaked, so live for the test.
    let table: &'static SysentTable = Box::leak(Box::new(unsafe {
        SysentTable::with_abis(
            &abis,
            probe_func as *mut usize as usize,
            enabled as *mut u8 as usize,
            0x1234,
        )
    }));
    assert_eq!(table.len(), 11);
    assert_eq!(
        (
            table.module(4),
            table.module(5),
            table.module(10),
            table.module(11)
        ),
        ("freebsd", "freebsd32", "freebsd32", "freebsd")
    );
    assert_eq!(
        (table.name(9), table.name(10)),
        (Some("write"), Some("freebsd32_mmap"))
    );
    // callp → index: the entry's own table decides, not the code.
    assert_eq!(table.sysnum_of_call(4, native + 4 * SYSENT_SIZE), Some(4));
    assert_eq!(table.sysnum_of_call(4, compat + 4 * SYSENT_SIZE), Some(9));
    assert_eq!(table.sysnum_of_call(4, compat + 4 * SYSENT_SIZE + 8), None);
    assert_eq!(table.sysnum_of_call(4, compat + 6 * SYSENT_SIZE), None);
    assert_eq!(table.sysnum_of_call(4, 0), None);

    let host = MockHost::leaked(1);
    let provider = SyscallProvider::new(host, table);
    provider.set_handle(5);
    provider.provide();
    let probes = host.probes.lock().unwrap().clone();
    assert_eq!(probes.len(), 22, "entry and return for 5 + 6 system calls");
    let compat_write = probes
        .iter()
        .find(|p| p.module == "freebsd32" && p.function == "write" && p.name == "entry")
        .expect("syscall:freebsd32:write:entry");
    assert_eq!(compat_write.parg, 9 | ENTRY_FLAG);
    let compat_write_id = {
        use rdtrace_providers::host::ProviderHost;
        host.probe_lookup(5, "freebsd32", "write", "entry")
    };
    assert_ne!(compat_write_id, 0);
    assert!(probes
        .iter()
        .any(|p| p.module == "freebsd" && p.function == "write" && p.name == "return"));
    let native_write = host.probe_lookup_id("write", "entry");
    provider.enable(compat_write_id, compat_write.parg);
    let sysent_id = |base: usize, entry: usize| -> u32 {
        // SAFETY: inside a leaked sysent array.
        unsafe { std::ptr::read((base + entry * SYSENT_SIZE + 20) as *const u32) }
    };
    assert_eq!(
        sysent_id(compat, 4),
        compat_write_id,
        "freebsd32_sysent[4].sy_entry"
    );
    assert_eq!(sysent_id(native, 4), 0, "the native write stays off");
    assert_eq!(*probe_func, 0x1234, "the one hook installed");

    // write(2) through each table, as syscallenter calls the hook.
    let call = |sysent: usize| {
        let mut sa = [0u8; 80];
        sa[0..4].copy_from_slice(&4u32.to_le_bytes());
        sa[8..16].copy_from_slice(&((sysent + 4 * SYSENT_SIZE) as u64).to_le_bytes());
        sa[16..24].copy_from_slice(&77u64.to_le_bytes());
        // SAFETY: `sa` is an 80-byte syscall_args image.
        unsafe { provider.fire_from_syscall_args(sa.as_ptr(), KIND_ENTRY, 0) };
    };
    call(native);
    assert!(
        host.take_fired().is_empty(),
        "native write(2) is not enabled"
    );
    call(compat);
    assert_eq!(
        host.take_fired()
            .into_iter()
            .map(|(id, a, _)| (id, a[0]))
            .collect::<Vec<_>>(),
        vec![(compat_write_id, 77)]
    );
    assert_ne!(native_write, compat_write_id);
    provider.disable(compat_write_id, compat_write.parg);
    assert_eq!(sysent_id(compat, 4), 0);
}
