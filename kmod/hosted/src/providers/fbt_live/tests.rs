//! Live fbt on this test process: hand-written x86_64 functions with known
//! prologues and epilogues are instrumented and called thousands of times
//! from several threads; then rustc-compiled code (the iced-x86 decoder in
//! this binary) is instrumented wholesale while it runs. Figures for the
//! report are printed with `--nocapture`.

use super::*;
use crate::providers::elf_symbols;
use rdtrace_providers::fbt::FunctionSymbol;
use rdtrace_providers::host::{ProviderHandle, ProviderHost, TimerId};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Instant;

std::arch::global_asm!(
    ".text",
    ".globl hosted_target_add",
    ".type hosted_target_add,@function",
    "hosted_target_add:",
    "push rbp",
    "mov rbp, rsp",
    "lea rax, [rdi + rsi]",
    "pop rbp",
    "ret",
    ".size hosted_target_add, . - hosted_target_add",
    ".globl hosted_target_sum5",
    ".type hosted_target_sum5,@function",
    "hosted_target_sum5:",
    "push rbx",
    "sub rsp, 16",
    "mov rax, rdi",
    "add rax, rsi",
    "add rax, rdx",
    "add rax, rcx",
    "add rax, r8",
    "mov [rsp], rax",
    "mov rbx, [rsp]",
    "mov rax, rbx",
    "add rsp, 16",
    "pop rbx",
    "ret",
    ".size hosted_target_sum5, . - hosted_target_sum5",
    ".globl hosted_target_twice",
    ".type hosted_target_twice,@function",
    "hosted_target_twice:",
    "push rbp",
    "mov rbp, rsp",
    "test rdi, rdi",
    "jz 2f",
    "lea rax, [rdi + rdi]",
    "pop rbp",
    "ret",
    "2:",
    "mov rax, -1",
    "leave",
    "ret",
    ".size hosted_target_twice, . - hosted_target_twice",
    ".globl hosted_target_tail",
    ".type hosted_target_tail,@function",
    "hosted_target_tail:",
    "push rbp",
    "mov rbp, rsp",
    "pop rbp",
    "jmp hosted_target_add",
    ".size hosted_target_tail, . - hosted_target_tail",
    ".globl hosted_registered_mul",
    ".type hosted_registered_mul,@function",
    "hosted_registered_mul:",
    "push rbp",
    "mov rbp, rsp",
    "mov rax, rdi",
    "imul rax, rsi",
    "pop rbp",
    "ret",
    ".size hosted_registered_mul, . - hosted_registered_mul",
);

extern "C" {
    fn hosted_target_add(a: u64, b: u64) -> u64;
    fn hosted_target_sum5(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64;
    fn hosted_target_twice(a: u64) -> i64;
    fn hosted_target_tail(a: u64, b: u64) -> u64;
    fn hosted_registered_mul(a: u64, b: u64) -> u64;
}

const MAX_IDS: usize = 1 << 17;

/// Records firings with atomics only (the handler is a signal handler).
struct LiveHost {
    names: Mutex<Vec<(String, String)>>,
    by_name: Mutex<std::collections::HashMap<(String, String), u32>>,
    count: Box<[AtomicU64]>,
    arg0_sum: Box<[AtomicU64]>,
    arg1_sum: Box<[AtomicU64]>,
}

impl LiveHost {
    fn new() -> Self {
        let zeros = || {
            (0..MAX_IDS)
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        };
        LiveHost {
            names: Mutex::new(Vec::new()),
            by_name: Mutex::default(),
            count: zeros(),
            arg0_sum: zeros(),
            arg1_sum: zeros(),
        }
    }
    fn id(&self, function: &str, name: &str) -> u32 {
        let key = (function.to_string(), name.to_string());
        self.by_name.lock().unwrap().get(&key).copied().unwrap_or(0)
    }
    fn count(&self, id: u32) -> u64 {
        self.count[id as usize].load(Ordering::SeqCst)
    }
}

impl ProviderHost for LiveHost {
    fn probe_create(
        &self,
        _p: ProviderHandle,
        _m: &str,
        function: &str,
        name: &str,
        _a: i32,
        _parg: usize,
    ) -> u32 {
        let mut names = self.names.lock().unwrap();
        if names.len() + 1 >= MAX_IDS {
            return 0;
        }
        names.push((function.to_string(), name.to_string()));
        let id = names.len() as u32;
        self.by_name
            .lock()
            .unwrap()
            .insert((function.to_string(), name.to_string()), id);
        id
    }
    fn probe_lookup(&self, _p: ProviderHandle, _m: &str, function: &str, name: &str) -> u32 {
        self.id(function, name)
    }
    fn probe(&self, id: u32, args: [u64; 5]) {
        if let Some(c) = self.count.get(id as usize) {
            c.fetch_add(1, Ordering::Relaxed);
            self.arg0_sum[id as usize].fetch_add(args[0], Ordering::Relaxed);
            self.arg1_sum[id as usize].fetch_add(args[1], Ordering::Relaxed);
        }
    }
    fn cpu_count(&self) -> usize {
        1
    }
    fn cpu_id(&self) -> usize {
        0
    }
    fn sync(&self) {
        wait_for_handlers();
    }
    fn monotonic_ns(&self) -> u64 {
        0
    }
    fn timer_create(
        &self,
        _c: Option<usize>,
        _i: u64,
        _f: fn(usize),
        _a: usize,
    ) -> Option<TimerId> {
        None
    }
    fn timer_destroy(&self, _id: TimerId) {}
}

struct Live {
    host: &'static LiveHost,
    fbt: &'static FbtProvider<X86_64>,
}

/// One provider for the whole test process (the SIGTRAP handler is global).
fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| {
        let host: &'static LiveHost = Box::leak(Box::new(LiveHost::new()));
        let text: &'static MprotectText = Box::leak(Box::default());
        let fbt: &'static FbtProvider<X86_64> = Box::leak(Box::new(FbtProvider::new(host, text)));
        install(fbt).unwrap();
        Live { host, fbt }
    })
}

/// This binary's functions at their run-time addresses.
fn own_functions() -> Vec<(String, u64, u64)> {
    let funcs = elf_symbols::read(Path::new("/proc/self/exe")).unwrap();
    let anchor = funcs
        .iter()
        .find(|f| f.name == "hosted_target_add")
        .expect("hosted_target_add in the symbol table");
    let bias = (hosted_target_add as *const () as u64).wrapping_sub(anchor.value);
    funcs
        .into_iter()
        .map(|f| (f.name, f.value.wrapping_add(bias), f.size))
        .collect()
}

fn code_of(addr: u64, size: u64) -> Vec<u8> {
    let mut buf = vec![0u8; size as usize];
    MprotectText::default().read_text(addr, &mut buf).unwrap();
    buf
}

#[test]
fn live_fbt_on_known_functions_from_several_threads() {
    let Live { host, fbt } = live();
    let targets: Vec<(String, u64, u64)> = own_functions()
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("hosted_target_"))
        .collect();
    assert_eq!(targets.len(), 4);
    let originals: Vec<Vec<u8>> = targets.iter().map(|(_, a, s)| code_of(*a, *s)).collect();
    let stats = fbt.provide_module(
        "hosted-test",
        targets.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    assert_eq!(
        (stats.entry_probes, stats.return_probes, stats.return_sites),
        (4, 4, 5)
    );
    let probe = |f: &str, n: &str| {
        let id = host.id(f, n);
        assert_ne!(id, 0, "{f}:{n}");
        id
    };
    let ids: Vec<u32> = [
        "hosted_target_add",
        "hosted_target_sum5",
        "hosted_target_twice",
        "hosted_target_tail",
    ]
    .iter()
    .flat_map(|f| [probe(f, "entry"), probe(f, "return")])
    .collect();
    let pargs: Vec<usize> = {
        let list = fbt.probe_list();
        ids.iter()
            .map(|id| list.iter().find(|p| p.0 == *id).unwrap().1)
            .collect()
    };
    for (id, parg) in ids.iter().zip(&pargs) {
        fbt.enable(*id, *parg).unwrap();
    }
    for ((_, addr, size), original) in targets.iter().zip(&originals) {
        let now = code_of(*addr, *size);
        assert_ne!(&now, original, "breakpoints written");
        assert_eq!(now[0], 0xCC, "entry breakpoint at the first instruction");
    }

    const THREADS: u64 = 4;
    const CALLS: u64 = 5000;
    let handled_before = traps_handled();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    // SAFETY: the asm functions follow the SysV ABI.
                    unsafe {
                        assert_eq!(hosted_target_add(i, t), i + t);
                        assert_eq!(hosted_target_sum5(i, 1, 2, 3, t), i + 6 + t);
                        assert_eq!(
                            hosted_target_twice(i),
                            if i == 0 { -1 } else { 2 * i as i64 }
                        );
                        assert_eq!(hosted_target_tail(t, i), t + i);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let n = THREADS * CALLS;
    let (add_e, add_r, sum_e, sum_r, twice_e, twice_r, tail_e, tail_r) = (
        ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7],
    );
    // The tail call enters hosted_target_add through its entry, so add fires twice per iteration.
    assert_eq!(host.count(add_e), 2 * n);
    assert_eq!(host.count(add_r), 2 * n);
    for id in [sum_e, sum_r, twice_e, twice_r, tail_e, tail_r] {
        assert_eq!(host.count(id), n, "probe {id}");
    }
    // Other tests may trap concurrently, so the global count is a lower bound.
    assert!(traps_handled() - handled_before >= (10 * n) as usize);
    // Entry arguments: add(i, t) and add(t, i) (via tail); sum5's fifth argument is t.
    let sum_i: u64 = THREADS * (CALLS * (CALLS - 1) / 2);
    let sum_t: u64 = CALLS * (THREADS * (THREADS - 1) / 2);
    assert_eq!(
        host.arg0_sum[add_e as usize].load(Ordering::SeqCst),
        sum_i + sum_t
    );
    assert_eq!(
        host.arg1_sum[add_e as usize].load(Ordering::SeqCst),
        sum_t + sum_i
    );
    assert_eq!(host.arg0_sum[sum_e as usize].load(Ordering::SeqCst), sum_i);
    // Return values: add returns i+t on both paths; twice returns 2i or -1.
    assert_eq!(
        host.arg1_sum[add_r as usize].load(Ordering::SeqCst),
        2 * (sum_i + sum_t)
    );
    let twice_sum = (2 * sum_i).wrapping_add((THREADS).wrapping_mul(u64::MAX));
    assert_eq!(
        host.arg1_sum[twice_r as usize].load(Ordering::SeqCst),
        twice_sum
    );
    // arg0 of return probes is the return site's offset: twice has two sites.
    let twice_offsets = host.arg0_sum[twice_r as usize].load(Ordering::SeqCst);
    let (first_ret, second_ret) = (14u64, 23u64);
    assert_eq!(
        twice_offsets,
        (n - THREADS) * first_ret + THREADS * second_ret
    );
    // The tail-call site is the jmp at offset 5.
    assert_eq!(host.arg0_sum[tail_r as usize].load(Ordering::SeqCst), 5 * n);

    for (id, parg) in ids.iter().zip(&pargs) {
        fbt.disable(*id, *parg);
    }
    for ((name, addr, size), original) in targets.iter().zip(&originals) {
        assert_eq!(
            &code_of(*addr, *size),
            original,
            "{name}: original bytes restored exactly"
        );
    }
    // SAFETY: as above.
    assert_eq!(unsafe { hosted_target_add(2, 3) }, 5);
    assert_eq!(host.count(add_e), 2 * n, "no firing after disable");
}

/// A workload in rustc-compiled code: walk a buffer's instructions with the
/// fbt decoder, which runs iced-x86's decoder for every instruction.
fn iced_workload(code: &[u8]) -> (usize, u64) {
    let (mut count, mut hash) = (0usize, 0u64);
    let mut offset = 0usize;
    while offset < code.len() {
        let walked = rdtrace_providers::fbt::isa::x86_64::walk_instructions(
            &code[offset..],
            0x1000,
            &mut |_, insn| {
                count += 1;
                hash = hash.wrapping_mul(31).wrapping_add(insn.len() as u64);
                true
            },
        );
        // Skip what the walk refused (data) one byte at a time.
        offset += walked.max(1);
    }
    (count, hash)
}

#[test]
fn whole_binary_enumeration_and_live_rustc_code() {
    // 1. Enumerate and decode every function of this (large, rustc-built) binary.
    let started = Instant::now();
    let functions = own_functions();
    let listed = started.elapsed();
    let counting_host: &'static LiveHost = Box::leak(Box::new(LiveHost::new()));
    let text: &'static MprotectText = Box::leak(Box::default());
    let offline: FbtProvider<X86_64> = FbtProvider::new(counting_host, text);
    let started = Instant::now();
    let stats = offline.provide_module(
        "self",
        functions.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    let decoded = started.elapsed();
    eprintln!(
        "fbt enumeration of /proc/self/exe: {} function symbols ({} excluded, {} aliases), {} entry probes, \
         {} return probes over {} return sites; symbol table {:?}, decode+probe creation {:?}",
        stats.functions,
        stats.excluded,
        stats.aliases,
        stats.entry_probes,
        stats.return_probes,
        stats.return_sites,
        listed,
        decoded
    );
    assert!(stats.functions > 1000);
    assert!(
        stats.entry_probes * 2 > stats.functions - stats.excluded,
        "most functions get an entry probe"
    );

    // 2. Live: instrument every iced-x86 function and run iced while enabled.
    let Live { host, fbt } = live();
    let sample = code_of(iced_workload as *const () as u64, 64);
    let mut big = Vec::new();
    for (_, addr, size) in functions
        .iter()
        .filter(|(n, _, _)| n.contains("iced_x86"))
        .take(40)
    {
        big.extend(code_of(*addr, (*size).min(4096)));
    }
    big.extend(&sample);
    let expected = iced_workload(&big);
    let iced: Vec<&(String, u64, u64)> = functions
        .iter()
        .filter(|(n, _, _)| n.contains("iced_x86"))
        .collect();
    let before: Vec<Vec<u8>> = iced.iter().map(|(_, a, s)| code_of(*a, *s)).collect();
    let stats = fbt.provide_module(
        "iced",
        iced.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    let probes: Vec<(u32, usize)> = fbt
        .probe_list()
        .into_iter()
        .filter(|p| {
            host.names.lock().unwrap()[p.0 as usize - 1]
                .0
                .contains("iced_x86")
        })
        .map(|p| (p.0, p.1))
        .collect();
    let started = Instant::now();
    for (id, parg) in &probes {
        fbt.enable(*id, *parg).unwrap();
    }
    let enabled_in = started.elapsed();
    let handled = traps_handled();
    let started = Instant::now();
    let result = iced_workload(&big);
    let ran_in = started.elapsed();
    let traps = traps_handled() - handled;
    let started = Instant::now();
    for (id, parg) in &probes {
        fbt.disable(*id, *parg);
    }
    let disabled_in = started.elapsed();
    eprintln!(
        "live fbt on iced-x86 in this process: {} functions, {} probes ({} entry, {} return over {} sites) \
         enabled in {:?}, disabled in {:?}; workload decoded {} instructions with {} probe firings in {:?}",
        iced.len(),
        probes.len(),
        stats.entry_probes,
        stats.return_probes,
        stats.return_sites,
        enabled_in,
        disabled_in,
        result.0,
        traps,
        ran_in
    );
    assert_eq!(
        result, expected,
        "instrumented code computes the same result"
    );
    assert!(traps > 1000, "the workload hit the breakpoints ({traps})");
    for ((name, addr, size), original) in iced.iter().zip(&before) {
        assert_eq!(&code_of(*addr, *size), original, "{name}: restored exactly");
    }
}

/// Enumerate a binary on disk (RDTRACE_FBT_MEASURE_BIN, default this test
/// binary) the way fbt enumerates a module, and report how much of it the
/// x86_64 decoder instruments and how long that takes.
#[test]
fn enumerate_a_binary_on_disk() {
    let path = std::env::var("RDTRACE_FBT_MEASURE_BIN").unwrap_or_else(|_| "/proc/self/exe".into());
    let bytes = std::fs::read(&path).unwrap();
    let started = Instant::now();
    let functions = elf_symbols::parse(&bytes).expect("an ELF64 file");
    let listed = started.elapsed();
    let text: &'static elf_symbols::FileText =
        Box::leak(Box::new(elf_symbols::FileText::new(bytes).unwrap()));
    let host: &'static LiveHost = Box::leak(Box::new(LiveHost::new()));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, text);
    let started = Instant::now();
    let stats = fbt.provide_module(
        "file",
        functions.iter().map(|f| FunctionSymbol {
            name: &f.name,
            addr: f.value,
            size: f.size,
        }),
    );
    let decoded = started.elapsed();
    eprintln!(
        "fbt enumeration of {path}: {} function symbols ({} excluded, {} aliases), {} entry probes, {} return \
         probes over {} return sites; symbols {:?}, decode+probe creation {:?}",
        stats.functions,
        stats.excluded,
        stats.aliases,
        stats.entry_probes,
        stats.return_probes,
        stats.return_sites,
        listed,
        decoded
    );
    let candidates = stats.functions - stats.excluded - stats.aliases;
    assert!(
        stats.return_probes * 10 > candidates * 8,
        "most functions get a return probe"
    );
    assert!(
        stats.entry_probes * 2 > candidates,
        "most functions get an entry probe"
    );
}

/// The registered live fbt provider on the real framework: probes named
/// after this process's functions, enabled through the framework's ops.
#[test]
fn registered_live_provider_on_the_framework() {
    use crate::platform::HostedPlatform;
    use rdtrace_framework::registry;
    let platform: &'static HostedPlatform = crate::HostedKernel::get()
        .expect("hosted kernel")
        .platform();
    let host = rdtrace_providers::glue::FrameworkHost::leaked(platform);
    static SOURCE: OwnFunctions = OwnFunctions {
        module: "self",
        filter: |n| n == "hosted_registered_mul",
    };
    let (id, fbt) = register(host, &SOURCE).unwrap();
    let fw = registry::get().unwrap();
    fw.provide_all(None);
    let entry = registry::probe_lookup(id, "self", "hosted_registered_mul", "entry");
    let ret = registry::probe_lookup(id, "self", "hosted_registered_mul", "return");
    assert!(entry != 0 && ret != 0);
    let addr = hosted_registered_mul as *const () as u64;
    let original = code_of(addr, 12);
    for probe in [entry, ret] {
        let p = fw.probe_by_id(probe).unwrap();
        p.provider().ops.enable(probe, p.parg);
    }
    assert_eq!(code_of(addr, 1), vec![0xCC]);
    let before = traps_handled();
    for i in 0..1000u64 {
        // SAFETY: SysV ABI function.
        assert_eq!(unsafe { hosted_registered_mul(i, 3) }, 3 * i);
    }
    assert!(traps_handled() - before >= 2000);
    for probe in [entry, ret] {
        let p = fw.probe_by_id(probe).unwrap();
        p.provider().ops.disable(probe, p.parg);
    }
    assert_eq!(code_of(addr, 12), original);
    assert_eq!(fbt.site_count(), 2);
}
