//! Tests for the DIF VM: a small simulated platform, an assembler-level
//! harness, and one file per concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod dynvars;
mod faults;
mod opcodes;
mod proptests;
mod subrs;
mod validation;
mod variables;

extern crate std;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::abi::{op, type_kind, var_desc};
use super::bench_support::{imm, instr};
use super::{
    execute, load_string, Difo, DifoError, DynVarArena, ExecContext, ExecHooks, Fault, GlobalVars,
    LocalVars, TypeDesc, VarDesc, VarScope,
};
use crate::platform::{
    AccessFault, AllocFlags, Errno, Platform, PlatformTimers, ThreadIdentity, TimerId,
};

/// A platform whose "kernel" and "user" memories are a few byte ranges at
/// made-up addresses; everything else faults.
pub(crate) struct TestPlatform {
    pub kernel: Vec<(u64, Vec<u8>)>,
    pub user: Vec<(u64, Vec<u8>)>,
    pub syncs: AtomicUsize,
    /// Fault-checked loads served (kernel + user).
    pub loads: AtomicUsize,
    pub ncpu: usize,
}

fn read_from(regions: &[(u64, Vec<u8>)], addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
    for (base, bytes) in regions {
        let end = addr
            .checked_add(buf.len() as u64)
            .ok_or(AccessFault::BadAddress)?;
        if addr >= *base && end <= base + bytes.len() as u64 {
            let off = (addr - base) as usize;
            buf.copy_from_slice(&bytes[off..off + buf.len()]);
            return Ok(());
        }
    }
    Err(AccessFault::BadAddress)
}

impl PlatformTimers for TestPlatform {
    fn timer_create(
        &self,
        _cpu: Option<usize>,
        _ns: u64,
        _f: fn(usize),
        _arg: usize,
    ) -> Option<TimerId> {
        None
    }
    fn timer_destroy(&self, _id: TimerId) {}
}

// SAFETY: the test platform never faults its caller (loads are checked
// against its own tables), and allocation goes through the global allocator.
unsafe impl Platform for TestPlatform {
    fn alloc_zeroed(&self, size: usize, align: usize, _flags: AllocFlags) -> *mut u8 {
        let layout = std::alloc::Layout::from_size_align(size.max(1), align).unwrap();
        // SAFETY: the layout has non-zero size.
        unsafe { std::alloc::alloc_zeroed(layout) }
    }
    unsafe fn free(&self, ptr: *mut u8, size: usize, align: usize) {
        let layout = std::alloc::Layout::from_size_align(size.max(1), align).unwrap();
        // SAFETY: the caller promises `ptr` came from `alloc_zeroed` with this layout.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
    fn cpu_id(&self) -> usize {
        0
    }
    fn cpu_count(&self) -> usize {
        self.ncpu
    }
    fn monotonic_ns(&self) -> u64 {
        123_456_789
    }
    fn wall_ns(&self) -> u64 {
        1_700_000_000_000_000_000
    }
    fn interrupts_disable(&self) -> usize {
        0
    }
    fn interrupts_restore(&self, _cookie: usize) {}
    fn fault_checked_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        if addr % 2 == 1 && buf.len() > 1 && (0xa000_0000..0xb000_0000).contains(&addr) {
            // A window that behaves like a strict-alignment machine.
            return Err(AccessFault::BadAlignment);
        }
        read_from(&self.kernel, addr, buf)
    }
    fn fault_checked_user_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        read_from(&self.user, addr, buf)
    }
    fn copyin(&self, _uaddr: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::EFAULT)
    }
    fn copyout(&self, _buf: &[u8], _uaddr: u64) -> Result<(), Errno> {
        Err(Errno::EFAULT)
    }
    fn xcall(&self, _cpu: Option<usize>, func: fn(usize), arg: usize) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        func(arg);
    }
    fn current_thread(&self) -> ThreadIdentity {
        ThreadIdentity::default()
    }
    fn current_execname(&self, buf: &mut [u8]) {
        for (d, s) in buf
            .iter_mut()
            .zip(b"sshd\0".iter().chain(core::iter::repeat(&0)))
        {
            *d = *s;
        }
    }
}

/// Kernel address of the simulated kernel memory used by the tests.
pub(crate) const KMEM: u64 = 0xffff_0000_0000_1000;
/// User address of the simulated user memory.
pub(crate) const UMEM: u64 = 0x0000_0000_4000_0000;

pub(crate) fn platform_with(
    kernel: Vec<(u64, Vec<u8>)>,
    user: Vec<(u64, Vec<u8>)>,
) -> &'static TestPlatform {
    Box::leak(Box::new(TestPlatform {
        kernel,
        user,
        syncs: AtomicUsize::new(0),
        loads: AtomicUsize::new(0),
        ncpu: 2,
    }))
}

pub(crate) fn default_platform() -> &'static TestPlatform {
    let mut k = vec![0u8; 256];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    // A NUL-terminated kernel string at KMEM + 0x80.
    k[0x80..0x80 + 6].copy_from_slice(b"kernel");
    k[0x86] = 0;
    // Embedded NULs for memstr().
    k[0x90..0x95].copy_from_slice(b"a\0b\0c");
    // An IPv4 address (192.168.1.10) and IPv6 addresses.
    k[0xa0..0xa4].copy_from_slice(&[192, 168, 1, 10]);
    // A string for strtok() across DIFOs.
    k[0xb0..0xb4].copy_from_slice(b"x y\0");
    // A string for strtok() across DIFOs.
    k[0xb0..0xb4].copy_from_slice(b"x y\0");
    let mut u = vec![0u8; 128];
    u[..11].copy_from_slice(b"hello user\0");
    for (i, b) in u[64..].iter_mut().enumerate() {
        *b = 0x40 + i as u8;
    }
    platform_with(vec![(KMEM, k)], vec![(UMEM, u)])
}

/// Hooks recording what the VM asked for.
#[derive(Default)]
pub(crate) struct TestHooks {
    pub speculations: u64,
    pub copied_out: Vec<(u64, Vec<u8>)>,
    pub lock_override: Option<u64>,
}

impl ExecHooks for TestHooks {
    fn probe_arg(&mut self, index: u64) -> Option<u64> {
        Some(index.wrapping_add(1000))
    }
    fn speculation(&mut self) -> u64 {
        self.speculations += 1;
        self.speculations
    }
    fn stack_depth(&mut self) -> u64 {
        7
    }
    fn caller(&mut self) -> u64 {
        0xffff_ffff_8000_1234
    }
    fn copyout(&mut self, bytes: &[u8], uaddr: u64) -> bool {
        self.copied_out.push((uaddr, bytes.to_vec()));
        true
    }
    fn lock_query(&mut self, _query: u16, _addr: u64) -> Option<u64> {
        self.lock_override
    }
}

pub(crate) fn ctf8() -> TypeDesc {
    TypeDesc::ctf(0, 8)
}

pub(crate) fn string_type(size: u32) -> TypeDesc {
    TypeDesc::string(size)
}

pub(crate) fn var(id: u16, scope: u8, kind: u8, ty: TypeDesc) -> VarDesc {
    VarDesc {
        name: 0,
        id: u32::from(id),
        kind,
        scope,
        flags: 0,
        ty,
    }
}

pub(crate) fn scalar(id: u16, scope: u8) -> VarDesc {
    var(id, scope, var_desc::KIND_SCALAR, ctf8())
}

/// A program and its tables, built instruction by instruction.
#[derive(Default, Clone)]
pub(crate) struct Asm {
    pub text: Vec<u32>,
    pub ints: Vec<u64>,
    pub strs: Vec<u8>,
    pub vars: Vec<VarDesc>,
    pub rtype: Option<TypeDesc>,
}

impl Asm {
    pub fn new() -> Self {
        Asm::default()
    }
    pub fn i(&mut self, word: u32) -> &mut Self {
        self.text.push(word);
        self
    }
    pub fn r3(&mut self, opc: u8, r1: u8, r2: u8, rd: u8) -> &mut Self {
        self.i(instr(opc, r1, r2, rd))
    }
    /// rd = constant (through the integer table).
    pub fn set(&mut self, rd: u8, value: u64) -> &mut Self {
        let idx = self.ints.len() as u16;
        self.ints.push(value);
        self.i(imm(op::SETX, idx, rd))
    }
    /// rd = address of a string constant (through the string table).
    pub fn sets(&mut self, rd: u8, s: &str) -> &mut Self {
        let off = self.strs.len() as u16;
        self.strs.extend_from_slice(s.as_bytes());
        self.strs.push(0);
        self.i(imm(op::SETS, off, rd))
    }
    /// Push a by-value tuple entry.
    pub fn pushv(&mut self, rs: u8) -> &mut Self {
        self.i(instr(op::PUSHTV, type_kind::CTF, 0, rs))
    }
    /// Push a string tuple entry.
    pub fn pushs(&mut self, rs: u8) -> &mut Self {
        self.i(instr(op::PUSHTR, type_kind::STRING, 0, rs))
    }
    pub fn call(&mut self, subr: u16, rd: u8) -> &mut Self {
        self.i(imm(op::CALL, subr, rd))
    }
    pub fn flush(&mut self) -> &mut Self {
        self.i(instr(op::FLUSHTS, 0, 0, 0))
    }
    pub fn ret(&mut self, rd: u8) -> &mut Self {
        self.i(instr(op::RET, 0, 0, rd))
    }
    pub fn var(&mut self, v: VarDesc) -> &mut Self {
        self.vars.push(v);
        self
    }
    pub fn returns(&mut self, t: TypeDesc) -> &mut Self {
        self.rtype = Some(t);
        self
    }
    pub fn build(&self) -> Result<Difo, DifoError> {
        Difo::new(
            self.text.clone(),
            self.ints.clone(),
            self.strs.clone(),
            self.vars.clone(),
            self.rtype.unwrap_or_else(ctf8),
        )
    }
    pub fn difo(&self) -> Difo {
        match self.build() {
            Ok(d) => d,
            Err(e) => panic!("test program rejected: {e}"),
        }
    }
}

/// Storage and hooks for running DIFOs.
pub(crate) struct Harness {
    pub platform: &'static TestPlatform,
    pub globals: GlobalVars,
    pub locals: LocalVars,
    pub arena: DynVarArena,
    pub scratch: Vec<u8>,
    pub hooks: TestHooks,
    pub strsize: u64,
    pub tid: i64,
    pub thread_local_stored: bool,
}

impl Harness {
    pub fn new(difos: &[&Difo]) -> Self {
        Harness::with_platform(default_platform(), difos, 64 * 1024, 1024)
    }

    pub fn with_platform(
        platform: &'static TestPlatform,
        difos: &[&Difo],
        dynsize: usize,
        chunk: usize,
    ) -> Self {
        Harness {
            platform,
            globals: GlobalVars::new(VarScope::Global, difos.iter().copied()),
            locals: LocalVars::new(VarScope::Local, difos.iter().copied()),
            arena: DynVarArena::new(platform, dynsize, chunk, platform.ncpu).unwrap(),
            scratch: vec![0u8; 8192],
            hooks: TestHooks::default(),
            strsize: 256,
            tid: 100,
            thread_local_stored: false,
        }
    }

    /// Run `difo`; on success return its value and, for a string return
    /// type, the string it points to.
    pub fn run_full(&mut self, difo: &Difo) -> (Result<u64, Fault>, Option<String>) {
        let mut ctx = ExecContext::new(
            self.platform,
            &self.globals,
            &self.locals,
            &self.arena,
            &mut self.scratch,
            &mut self.hooks,
        );
        ctx.strsize = self.strsize;
        ctx.probe.args = [10, 11, 12, 13, 14];
        ctx.probe.provider = b"syscall";
        ctx.probe.module = b"freebsd";
        ctx.probe.function = b"open";
        ctx.probe.name = b"entry";
        ctx.probe.epid = 42;
        ctx.probe.id = 4242;
        ctx.cpu = 1;
        ctx.errno = 2;
        ctx.thread = ThreadIdentity {
            pid: 77,
            ppid: 1,
            tid: self.tid,
            uid: 1001,
            gid: 20,
            jid: 3,
            curthread: 0xffff_f800_0000_0100,
        };
        let r = execute(difo, &mut ctx);
        let text = match (r, difo.rtype().kind == type_kind::STRING) {
            (Ok(addr), true) if addr != 0 => {
                let mut buf = vec![0u8; 1024];
                let n = load_string(difo, &mut ctx, addr, &mut buf).unwrap();
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            _ => None,
        };
        self.thread_local_stored = ctx.thread_local_stored;
        (r, text)
    }

    pub fn run(&mut self, difo: &Difo) -> Result<u64, Fault> {
        self.run_full(difo).0
    }

    /// Run and expect success.
    pub fn ok(&mut self, difo: &Difo) -> u64 {
        match self.run(difo) {
            Ok(v) => v,
            Err(f) => panic!("unexpected fault {f:?}"),
        }
    }

    /// Run a string-returning DIFO and expect a non-NULL string.
    pub fn string(&mut self, difo: &Difo) -> String {
        match self.run_full(difo) {
            (Ok(_), Some(s)) => s,
            (r, _) => panic!("expected a string, got {r:?}"),
        }
    }
}

/// Build, run once with a fresh harness, return the value.
pub(crate) fn eval(asm: &Asm) -> Result<u64, Fault> {
    let d = asm.difo();
    Harness::new(&[&d]).run(&d)
}

/// Build, run once with a fresh harness, return the string result.
pub(crate) fn eval_str(asm: &mut Asm) -> String {
    asm.returns(string_type(256));
    let d = asm.difo();
    Harness::new(&[&d]).string(&d)
}
