//! The fbt provider's FreeBSD glue: function enumeration over the kernel
//! linker (every file's function symbols through
//! `linker_file_function_listall`; rdtrace's own file and DTrace's are
//! skipped, and `fbt::function_excluded` keeps the trap/invop paths, the
//! framework and the lock-owner helpers out), breakpoints written through
//! `kernel_text`, and the breakpoint trap hook `dtrace_invop_jump_addr`.
//!
//! * amd64: the kernel's breakpoint trap stub, seeing a kernel-mode int3 and
//!   a non-zero `dtrace_invop_jump_addr`, stores its normal path in
//!   `dtrace_invop_calltrap_addr` and jumps to the address with `%rsp` at the
//!   saved `struct trapframe`. Our stub (`kmod_fbt_invop_stub`) calls
//!   [`fbt_trap_amd64`], which fires the probe and emulates the displaced
//!   instruction on the frame; a stack store the instruction makes (`push`,
//!   `call`) is handed back to the stub, which first moves the hardware
//!   return frame (rip, cs, rflags, rsp, ss) below the trap frame — the
//!   store may land on the old one — then makes the store, reloads the
//!   general registers from the frame and returns with `iretq`. A
//!   breakpoint that is not ours goes on to `dtrace_invop_calltrap_addr`
//!   with the frame as the kernel left it.
//! * Module unload: `kld_unload_try` refuses (EBUSY) while an enabled
//!   probe lies in the file; `kld_unload` condenses the provider so no probe
//!   refers to the departed file's code.
//! * arm64 / riscv64: the kernel calls `dtrace_invop_jump_addr(frame)`; the
//!   providers' `arm64_invop`/`riscv64_invop` fire and emulate on the frame
//!   and return 0 when handled.
//!
//! Load/unload context, except the trap handlers (probe context: no
//! allocation, no locks, no panics).

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use alloc::boxed::Box;
    use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::{Errno, Platform};
    use rdtrace_framework::provider::ProviderId;
    use rdtrace_framework::registry;
    use rdtrace_providers::fbt::FbtProvider;
    use rdtrace_providers::glue;
    use rdtrace_providers::host::ProviderHost;
    use rdtrace_providers::linker_files::KernelFiles;

    use crate::kernel_files::KpiLinkerFiles;
    use crate::kernel_text::KERNEL_TEXT;
    use crate::platform::PLATFORM;

    #[cfg(target_arch = "x86_64")]
    type NativeIsa = rdtrace_providers::fbt::isa::x86_64::X86_64;
    #[cfg(target_arch = "aarch64")]
    type NativeIsa = rdtrace_providers::fbt::isa::aarch64::Aarch64;
    #[cfg(target_arch = "riscv64")]
    type NativeIsa = rdtrace_providers::fbt::isa::riscv64::Riscv64;

    type Provider = FbtProvider<NativeIsa>;
    type Source = KernelFiles<KpiLinkerFiles>;

    /// The provider the trap handler consults (null when fbt is not registered).
    static PROVIDER: AtomicPtr<Provider> = AtomicPtr::new(core::ptr::null_mut());

    struct FbtState {
        id: ProviderId,
        provider: &'static Provider,
        source: &'static Source,
        unload_try_tag: kpi::eventhandler_tag,
        unload_tag: kpi::eventhandler_tag,
    }

    // SAFETY: the eventhandler tags are opaque handles only passed back to
    // eventhandler_deregister; everything else is Sync.
    unsafe impl Send for FbtState {}

    static STATE: spin::Mutex<Option<FbtState>> = spin::Mutex::new(None);

    fn jump_slot() -> &'static AtomicUsize {
        // SAFETY: the kernel's pointer-sized hook variable; the trap path
        // reads it racily by design.
        unsafe { &*(core::ptr::addr_of_mut!(kpi::dtrace_invop_jump_addr) as *const AtomicUsize) }
    }

    // ---- amd64 ----------------------------------------------------------

    #[cfg(target_arch = "x86_64")]
    extern "C" {
        /// The breakpoint stub (global_asm below); never called from Rust.
        fn kmod_fbt_invop_stub();
    }

    #[cfg(target_arch = "x86_64")]
    fn hook_address() -> usize {
        kmod_fbt_invop_stub as *const () as usize
    }

    // Frame layout: struct trapframe (192 bytes) at F = %rsp on entry;
    // general registers at 0..120, rip 152, cs 160, rflags 168, rsp 176,
    // ss 184. Scratch S = F - 64: [S] deferred store address (0 = none),
    // [S+8] its value, [S+16..S+56) the relocated return frame.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.kmod_fbt_invop_stub,\"ax\",@progbits",
        ".globl kmod_fbt_invop_stub",
        ".hidden kmod_fbt_invop_stub",
        ".type kmod_fbt_invop_stub,@function",
        ".p2align 4",
        "kmod_fbt_invop_stub:",
        "sub rsp, 64",
        "lea rdi, [rsp + 64]",
        "mov rsi, rsp",
        "call {handler}",
        "test eax, eax",
        "jz 3f",
        "mov rax, [rsp + 216]",
        "mov [rsp + 16], rax",
        "mov rax, [rsp + 224]",
        "mov [rsp + 24], rax",
        "mov rax, [rsp + 232]",
        "mov [rsp + 32], rax",
        "mov rax, [rsp + 240]",
        "mov [rsp + 40], rax",
        "mov rax, [rsp + 248]",
        "mov [rsp + 48], rax",
        "mov rax, [rsp]",
        "test rax, rax",
        "jz 2f",
        "mov rcx, [rsp + 8]",
        "mov [rax], rcx",
        "2:",
        "mov rdi, [rsp + 64]",
        "mov rsi, [rsp + 72]",
        "mov rdx, [rsp + 80]",
        "mov rcx, [rsp + 88]",
        "mov r8, [rsp + 96]",
        "mov r9, [rsp + 104]",
        "mov rax, [rsp + 112]",
        "mov rbx, [rsp + 120]",
        "mov rbp, [rsp + 128]",
        "mov r10, [rsp + 136]",
        "mov r11, [rsp + 144]",
        "mov r12, [rsp + 152]",
        "mov r13, [rsp + 160]",
        "mov r14, [rsp + 168]",
        "mov r15, [rsp + 176]",
        "add rsp, 16",
        "iretq",
        "3:",
        "add rsp, 64",
        "jmp qword ptr [rip + {calltrap}]",
        ".size kmod_fbt_invop_stub, . - kmod_fbt_invop_stub",
        ".popsection",
        handler = sym fbt_trap_amd64,
        calltrap = sym kpi::dtrace_invop_calltrap_addr,
    );

    /// Stack access for the amd64 emulation: loads read the interrupted
    /// stack; the one store an instruction makes is handed to the stub.
    #[cfg(target_arch = "x86_64")]
    struct DeferredStack {
        store: Option<(u64, u64)>,
    }

    #[cfg(target_arch = "x86_64")]
    impl rdtrace_providers::fbt::isa::StackMemory for DeferredStack {
        fn load_u64(
            &mut self,
            addr: u64,
        ) -> Result<u64, rdtrace_providers::fbt::isa::EmulationError> {
            if addr == 0 || addr % 8 != 0 {
                return Err(rdtrace_providers::fbt::isa::EmulationError::Load(addr));
            }
            // SAFETY: an aligned address the interrupted instruction itself
            // reads from its own kernel stack (ret, pop, leave).
            Ok(unsafe { core::ptr::read_volatile(addr as *const u64) })
        }
        fn store_u64(
            &mut self,
            addr: u64,
            value: u64,
        ) -> Result<(), rdtrace_providers::fbt::isa::EmulationError> {
            if addr == 0 || self.store.is_some() {
                return Err(rdtrace_providers::fbt::isa::EmulationError::Store(addr));
            }
            self.store = Some((addr, value));
            Ok(())
        }
    }

    /// The amd64 handler the stub calls: 1 = handled (frame updated, maybe
    /// a deferred store in `deferred`), 0 = not an fbt breakpoint.
    /// *Probe context.*
    #[cfg(target_arch = "x86_64")]
    unsafe extern "C" fn fbt_trap_amd64(frame: *mut [u64; 24], deferred: *mut [u64; 2]) -> u32 {
        use rdtrace_providers::fbt::isa::x86_64::X86Reg;
        use rdtrace_providers::fbt::isa::RegisterFile;
        use rdtrace_providers::fbt::provider::Invop;
        use rdtrace_providers::fbt::trapframe::Amd64TrapFrame;
        // SAFETY: null or the registered provider, freed only after the
        // hook is removed and a sync.
        let Some(provider) = (unsafe { PROVIDER.load(Ordering::Acquire).as_ref() }) else {
            return 0;
        };
        // SAFETY: the stub passes the live trap frame and its scratch words.
        let (frame, deferred) = unsafe { (&mut *frame, &mut *deferred) };
        *deferred = [0, 0];
        let mut regs = Amd64TrapFrame(frame);
        let addr = regs.get(X86Reg::Rip).wrapping_sub(1);
        let mut stack = DeferredStack { store: None };
        match provider.invop(addr, &mut regs, &mut stack) {
            Invop::Emulated => {
                if let Some((at, value)) = stack.store {
                    *deferred = [at, value];
                }
                1
            }
            Invop::NotOurs | Invop::Failed(_) => 0,
        }
    }

    // ---- arm64 / riscv64 --------------------------------------------------

    #[cfg(target_arch = "aarch64")]
    fn hook_address() -> usize {
        fbt_trap_arm64 as *const () as usize
    }

    /// `dtrace_invop_jump_addr(frame)` on arm64: 0 = handled. *Probe context.*
    #[cfg(target_arch = "aarch64")]
    unsafe extern "C" fn fbt_trap_arm64(frame: *mut [u64; 36]) -> i32 {
        use rdtrace_providers::fbt::trapframe::Arm64TrapFrame;
        // SAFETY: as in the amd64 handler.
        let Some(provider) = (unsafe { PROVIDER.load(Ordering::Acquire).as_ref() }) else {
            return 1;
        };
        let frame_addr = frame as u64;
        // SAFETY: the kernel passes its live trap frame.
        let mut regs = Arm64TrapFrame(unsafe { &mut *frame });
        rdtrace_providers::fbt::kernel::arm64_invop(provider, frame_addr, &mut regs)
    }

    #[cfg(target_arch = "riscv64")]
    fn hook_address() -> usize {
        fbt_trap_riscv64 as *const () as usize
    }

    /// `dtrace_invop_jump_addr(frame)` on riscv64: 0 = handled. *Probe context.*
    #[cfg(target_arch = "riscv64")]
    unsafe extern "C" fn fbt_trap_riscv64(frame: *mut [u64; 35]) -> i32 {
        use rdtrace_providers::fbt::trapframe::RiscvTrapFrame;
        // SAFETY: as in the amd64 handler.
        let Some(provider) = (unsafe { PROVIDER.load(Ordering::Acquire).as_ref() }) else {
            return 1;
        };
        let frame_addr = frame as u64;
        // SAFETY: the kernel passes its live trap frame.
        let mut regs = RiscvTrapFrame(unsafe { &mut *frame });
        rdtrace_providers::fbt::kernel::riscv64_invop(provider, frame_addr, &mut regs)
    }

    // ---- registration -------------------------------------------------------

    /// Decode one tiny function so the instruction decoder builds its
    /// lazily-created, never-freed tables now, inside the static arena
    /// (released at unload) rather than as a leak of the malloc type.
    fn build_decoder_tables() {
        use rdtrace_providers::fbt::isa::Isa;
        let scope = crate::static_arena::ArenaScope::enter(crate::malloc::this_thread());
        // push %rbp; ret — any bytes do, the first decode builds the tables.
        let _ = NativeIsa::find_entry(&[0x55, 0xc3, 0, 0], 0x1000);
        drop(scope);
    }

    /// Register fbt and install the breakpoint hook. EBUSY (nothing
    /// registered) if another DTrace already owns `dtrace_invop_jump_addr`.
    pub fn attach_fbt(host: &'static dyn ProviderHost) -> Result<(), Errno> {
        let mut guard = STATE.lock();
        if guard.is_some() {
            return Ok(());
        }
        build_decoder_tables();
        let source: &'static Source = Box::leak(Box::new(KernelFiles {
            linker: KpiLinkerFiles,
        }));
        let (id, provider) = match glue::register_fbt::<NativeIsa>(host, &KERNEL_TEXT, source) {
            Ok(registered) => registered,
            Err(e) => {
                // SAFETY: leaked just above, used by nothing.
                drop(unsafe { Box::from_raw(source as *const Source as *mut Source) });
                return Err(e);
            }
        };
        PROVIDER.store(
            provider as *const Provider as *mut Provider,
            Ordering::Release,
        );
        if jump_slot()
            .compare_exchange(0, hook_address(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            PROVIDER.store(core::ptr::null_mut(), Ordering::Release);
            let _ = registry::unregister(id);
            free(provider, source);
            return Err(Errno::EBUSY);
        }
        *guard = Some(FbtState {
            id,
            provider,
            source,
            unload_try_tag: crate::sdt_kernel::register_handler(
                c"kld_unload_try",
                on_kld_unload_try as *const (),
            ),
            unload_tag: crate::sdt_kernel::register_handler(
                c"kld_unload",
                on_kld_unload as *const (),
            ),
        });
        Ok(())
    }

    /// `kld_unload_try`: EBUSY while an enabled fbt probe lies in the file
    /// (FreeBSD keeps `lf->nenabled` for the same purpose).
    unsafe extern "C" fn on_kld_unload_try(
        _arg: *mut core::ffi::c_void,
        lf: kpi::linker_file_t,
        error: *mut core::ffi::c_int,
    ) {
        // SAFETY: the kernel passes its error accumulator.
        if error.is_null() || unsafe { *error } != 0 {
            return;
        }
        let guard = STATE.lock();
        let Some(state) = guard.as_ref() else {
            return;
        };
        let (start, size) = crate::kernel_files::file_range(
            rdtrace_providers::linker_files::LinkerFile(lf as usize),
        );
        let (start, end) = (start as u64, start.saturating_add(size) as u64);
        if state.provider.enabled_in(start, end) {
            // SAFETY: checked non-null above.
            unsafe { *error = 16 }; // EBUSY
        }
    }

    /// `kld_unload` (the file is gone): remove every fbt probe with no
    /// enabling (none of the departed file's can have one) and let the next
    /// `provide` instrument the remaining files' functions again. The
    /// framework has no per-module probe removal (`dtrace_module_unloaded`)
    /// to do this more selectively.
    unsafe extern "C" fn on_kld_unload(
        _arg: *mut core::ffi::c_void,
        _filename: *const core::ffi::c_char,
        _address: *mut core::ffi::c_void,
        _size: usize,
    ) {
        let guard = STATE.lock();
        if let Some(state) = guard.as_ref() {
            let _ = registry::condense(state.id);
            state.provider.forget_unprobed_functions();
        }
    }

    fn free(provider: &'static Provider, source: &'static Source) {
        // SAFETY: leaked by glue::register_fbt; unregistered and unreachable
        // from the trap hook, so this is the last reference. Dropping it
        // restores any breakpoint still written.
        drop(unsafe { Box::from_raw(provider as *const Provider as *mut Provider) });
        // SAFETY: leaked in attach_fbt; its only user is gone.
        drop(unsafe { Box::from_raw(source as *const Source as *mut Source) });
    }

    /// Unregister fbt (EBUSY, nothing changed, while a probe is enabled),
    /// remove the hook and free the provider.
    pub fn detach_fbt() -> Result<(), Errno> {
        let mut guard = STATE.lock();
        let Some(state) = guard.as_ref() else {
            return Ok(());
        };
        registry::unregister(state.id)?;
        crate::sdt_kernel::deregister_handler(c"kld_unload_try", state.unload_try_tag);
        crate::sdt_kernel::deregister_handler(c"kld_unload", state.unload_tag);
        let _ =
            jump_slot().compare_exchange(hook_address(), 0, Ordering::AcqRel, Ordering::Acquire);
        PROVIDER.store(core::ptr::null_mut(), Ordering::Release);
        // A trap that loaded the provider before the clear finishes first.
        PLATFORM.sync();
        if let Some(state) = guard.take() {
            free(state.provider, state.source);
        }
        Ok(())
    }

    /// Whether fbt is registered.
    pub fn fbt_attached() -> bool {
        STATE.lock().is_some()
    }
}
