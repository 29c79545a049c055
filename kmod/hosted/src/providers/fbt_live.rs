//! Live fbt inside the hosted kernel's own process (x86_64 Linux): breakpoints
//! (`int3`) are written into the process's real code with `mprotect`, the
//! resulting SIGTRAP runs the fbt trap handler on the interrupted thread's
//! `ucontext` registers, and the displaced instruction is emulated there
//! before the thread continues.
//!
//! Probe context: [`on_sigtrap`] (a signal handler: async-signal-safe, no
//! locks, no allocation). [`MprotectText`] and [`install`] are not.
//!
//! Races with disabling: a thread that executed an `int3` just before the
//! byte was restored finds no site (or a restored byte); the handler then
//! re-executes the restored instruction instead of failing.

use rdtrace_framework::platform::Errno;
use rdtrace_providers::fbt::isa::x86_64::{X86Reg, X86_64};
use rdtrace_providers::fbt::isa::{EmulationError, RegisterFile, StackMemory};
use rdtrace_providers::fbt::{FbtProvider, Invop};
use rdtrace_providers::text::TextWriter;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Code patching in this process: reads through `process_vm_readv` (an
/// unmapped address is an error, not a crash), writes by making the page
/// writable for the duration of the write.
#[derive(Default)]
pub struct MprotectText {
    lock: Mutex<()>,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

impl TextWriter for MprotectText {
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as usize as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, which we own; the kernel validates
        // `remote` and fails with EFAULT instead of faulting us.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if usize::try_from(n).ok() == Some(buf.len()) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let _serialised = self.lock.lock().map_err(|_| Errno::EBUSY)?;
        let page = page_size();
        let start = (addr as usize) & !(page - 1);
        let end = (addr as usize)
            .checked_add(bytes.len())
            .ok_or(Errno::EINVAL)?;
        let len = end - start;
        let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
        // SAFETY: the range covers code pages of this process (the caller
        // guarantees `addr` is an instruction); adding write permission
        // keeps them executable for other threads.
        if unsafe { libc::mprotect(start as *mut libc::c_void, len, rwx) } != 0 {
            return Err(Errno::EACCES);
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: the page is writable now; single-byte volatile stores
            // so a concurrently executing thread sees old or new bytes only.
            unsafe { core::ptr::write_volatile((addr as usize + i) as *mut u8, *b) };
        }
        // SAFETY: as above, restoring read+execute.
        if unsafe {
            libc::mprotect(
                start as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        } != 0
        {
            return Err(Errno::EACCES);
        }
        Ok(())
    }
}

/// The interrupted thread's registers in its signal `ucontext`.
pub struct UcontextRegs<'a> {
    gregs: &'a mut [libc::greg_t; 23],
}

fn greg_index(reg: X86Reg) -> usize {
    let index = match reg {
        X86Reg::Rax => libc::REG_RAX,
        X86Reg::Rcx => libc::REG_RCX,
        X86Reg::Rdx => libc::REG_RDX,
        X86Reg::Rbx => libc::REG_RBX,
        X86Reg::Rsp => libc::REG_RSP,
        X86Reg::Rbp => libc::REG_RBP,
        X86Reg::Rsi => libc::REG_RSI,
        X86Reg::Rdi => libc::REG_RDI,
        X86Reg::R8 => libc::REG_R8,
        X86Reg::R9 => libc::REG_R9,
        X86Reg::R10 => libc::REG_R10,
        X86Reg::R11 => libc::REG_R11,
        X86Reg::R12 => libc::REG_R12,
        X86Reg::R13 => libc::REG_R13,
        X86Reg::R14 => libc::REG_R14,
        X86Reg::R15 => libc::REG_R15,
        X86Reg::Rip => libc::REG_RIP,
        X86Reg::Rflags => libc::REG_EFL,
    };
    index as usize
}

impl RegisterFile<X86Reg> for UcontextRegs<'_> {
    fn get(&self, reg: X86Reg) -> u64 {
        self.gregs.get(greg_index(reg)).map_or(0, |v| *v as u64)
    }
    fn set(&mut self, reg: X86Reg, value: u64) {
        if let Some(slot) = self.gregs.get_mut(greg_index(reg)) {
            *slot = value as libc::greg_t;
        }
    }
}

/// The interrupted thread's stack, accessed directly: the addresses come
/// from its own `rsp`/`rbp` and the instruction being emulated, which would
/// have made the same accesses.
pub struct OwnStack;

impl StackMemory for OwnStack {
    fn load_u64(&mut self, addr: u64) -> Result<u64, EmulationError> {
        if addr == 0 {
            return Err(EmulationError::Load(addr));
        }
        // SAFETY: see the type's comment: the interrupted instruction reads
        // this very address.
        Ok(unsafe { core::ptr::read_unaligned(addr as usize as *const u64) })
    }
    fn store_u64(&mut self, addr: u64, value: u64) -> Result<(), EmulationError> {
        if addr == 0 {
            return Err(EmulationError::Store(addr));
        }
        // SAFETY: as above; pushes land in the red zone below rsp, which the
        // kernel left untouched when it built the signal frame.
        unsafe { core::ptr::write_unaligned(addr as usize as *mut u64, value) };
        Ok(())
    }
}

/// Providers whose sites the handler looks up, in installation order.
static PROVIDERS: [AtomicPtr<FbtProvider<X86_64>>; 4] = [
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
];
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// Number of breakpoints handled so far.
pub fn traps_handled() -> usize {
    HANDLED.load(Ordering::Relaxed)
}

/// Wait until no thread is inside the SIGTRAP handler (the hosted
/// `dtrace_sync` for fbt's site snapshots).
pub fn wait_for_handlers() {
    while IN_HANDLER.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

fn die_of_sigtrap() {
    // SAFETY: restoring the default action and re-raising is the documented
    // way for a handler to let a signal take its default effect.
    unsafe {
        libc::signal(libc::SIGTRAP, libc::SIG_DFL);
        libc::raise(libc::SIGTRAP);
    }
}

/// The SIGTRAP handler. *Probe context.*
extern "C" fn on_sigtrap(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    // SAFETY: for an SA_SIGINFO handler the third argument is the
    // interrupted thread's ucontext, valid and exclusively ours until return.
    let uc = unsafe { &mut *(context as *mut libc::ucontext_t) };
    let mut regs = UcontextRegs {
        gregs: &mut uc.uc_mcontext.gregs,
    };
    let addr = regs.get(X86Reg::Rip).wrapping_sub(1);
    let mut outcome = Invop::NotOurs;
    for slot in &PROVIDERS {
        // SAFETY: a slot is null or a provider `install` was given for 'static.
        if let Some(provider) = unsafe { slot.load(Ordering::Acquire).as_ref() } {
            outcome = provider.invop(addr, &mut regs, &mut OwnStack);
            if outcome != Invop::NotOurs {
                break;
            }
        }
    }
    match outcome {
        Invop::Emulated => {
            HANDLED.fetch_add(1, Ordering::Relaxed);
        }
        Invop::NotOurs => {
            // SAFETY: `addr` is the byte the CPU just executed, so it is mapped.
            let byte = unsafe { core::ptr::read_volatile(addr as usize as *const u8) };
            if byte == 0xCC {
                IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
                die_of_sigtrap();
                return;
            }
            // A site disabled while this thread was trapping: run the
            // restored instruction.
            regs.set(X86Reg::Rip, addr);
        }
        Invop::Failed(_) => {
            IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
            die_of_sigtrap();
            return;
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
}

/// Route this process's breakpoint traps to `provider` (as well as to those
/// installed before; at most four) and install the SIGTRAP handler.
pub fn install(provider: &'static FbtProvider<X86_64>) -> std::io::Result<()> {
    let pointer = provider as *const FbtProvider<X86_64> as *mut FbtProvider<X86_64>;
    let taken = PROVIDERS.iter().any(|slot| {
        slot.compare_exchange(
            std::ptr::null_mut(),
            pointer,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
            || slot.load(Ordering::Acquire) == pointer
    });
    if !taken {
        return Err(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            "no free fbt provider slot",
        ));
    }
    // SAFETY: a zeroed sigaction is a valid starting point; we fill in the
    // handler, SA_SIGINFO and an empty mask.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigtrap as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: installing a handler with a valid sigaction structure.
    if unsafe { libc::sigaction(libc::SIGTRAP, &action, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// A [`ProviderHost`](rdtrace_providers::host::ProviderHost) wrapper whose
/// `sync` also waits for SIGTRAP handlers in flight (they are this
/// process's probe context for fbt).
pub struct SignalSyncHost(pub &'static dyn rdtrace_providers::host::ProviderHost);

impl rdtrace_providers::host::ProviderHost for SignalSyncHost {
    fn probe_create(&self, p: usize, m: &str, f: &str, n: &str, aframes: i32, parg: usize) -> u32 {
        self.0.probe_create(p, m, f, n, aframes, parg)
    }
    fn probe_lookup(&self, p: usize, m: &str, f: &str, n: &str) -> u32 {
        self.0.probe_lookup(p, m, f, n)
    }
    fn probe(&self, id: u32, args: [u64; 5]) {
        self.0.probe(id, args);
    }
    fn cpu_count(&self) -> usize {
        self.0.cpu_count()
    }
    fn cpu_id(&self) -> usize {
        self.0.cpu_id()
    }
    fn sync(&self) {
        self.0.sync();
        wait_for_handlers();
    }
    fn monotonic_ns(&self) -> u64 {
        self.0.monotonic_ns()
    }
    fn timer_create(
        &self,
        cpu: Option<usize>,
        ns: u64,
        f: fn(usize),
        arg: usize,
    ) -> Option<rdtrace_providers::host::TimerId> {
        self.0.timer_create(cpu, ns, f, arg)
    }
    fn timer_destroy(&self, id: rdtrace_providers::host::TimerId) {
        self.0.timer_destroy(id);
    }
}

/// The functions of this process that pass `filter`, as one fbt module.
/// Functions on the trap path (the framework, the providers, std, libc) must
/// be kept out by the filter: instrumenting them would recurse.
pub struct OwnFunctions {
    pub module: &'static str,
    pub filter: fn(&str) -> bool,
}

impl rdtrace_providers::glue::FbtSource<X86_64> for OwnFunctions {
    fn provide_all(&self, fbt: &FbtProvider<X86_64>) {
        let Ok(functions) = super::elf_symbols::read(std::path::Path::new("/proc/self/exe")) else {
            return;
        };
        // The load bias, from a function whose run-time address we know.
        let anchor = on_sigtrap as *const () as u64;
        let Some(bias) = functions
            .iter()
            .find(|f| f.name.contains("fbt_live") && f.name.contains("on_sigtrap"))
            .map(|f| anchor.wrapping_sub(f.value))
        else {
            return;
        };
        let chosen = functions.iter().filter(|f| (self.filter)(&f.name));
        fbt.provide_module(
            self.module,
            chosen.map(|f| rdtrace_providers::fbt::FunctionSymbol {
                name: &f.name,
                addr: f.value.wrapping_add(bias),
                size: f.size,
            }),
        );
    }
}

/// Register a live `fbt` provider over this process's functions chosen by
/// `source`, and route SIGTRAP to it. One per process.
pub fn register(
    host: &'static dyn rdtrace_providers::host::ProviderHost,
    source: &'static OwnFunctions,
) -> Result<(rdtrace_framework::ProviderId, &'static FbtProvider<X86_64>), Errno> {
    let host: &'static SignalSyncHost = Box::leak(Box::new(SignalSyncHost(host)));
    let text: &'static MprotectText = Box::leak(Box::default());
    let (id, provider) = rdtrace_providers::glue::register_fbt(host, text, source)?;
    install(provider).map_err(|_| Errno::EINVAL)?;
    Ok((id, provider))
}
