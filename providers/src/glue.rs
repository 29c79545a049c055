//! Glue between the providers and the real framework: [`FrameworkHost`]
//! implements [`ProviderHost`] over `registry`, `dtrace_probe` and a
//! `Platform + PlatformTimers`, and the `register_*` functions register each
//! provider with `registry::register`, wrapping its state in a
//! [`ProviderOps`] implementation.
//!
//! Probe context: [`FrameworkHost::probe`] (`dtrace_probe`) and the platform
//! methods it forwards. Registration is module-load / hosted-start context.

use crate::fbt::isa::Isa;
use crate::fbt::FbtProvider;
use crate::host::{ProviderHandle, ProviderHost, TimerId};
use crate::profile::ProfileProvider;
use crate::sdt::SdtProvider;
use crate::syscall::{SyscallProvider, SyscallTable};
use crate::text::TextWriter;
use alloc::boxed::Box;
use alloc::string::String;
use rdtrace_framework::abi::{DTRACE_PRIV_KERNEL, DTRACE_PRIV_USER};
use rdtrace_framework::platform::{Errno, Platform, PlatformTimers};
use rdtrace_framework::provider::{
    ArgDesc, Attribute, ProbeDescription, ProviderAttributes, ProviderId, ProviderOps,
};
use rdtrace_framework::registry;

/// Free a provider leaked for registration when the registration failed.
///
/// # Safety
/// `provider` came from `Box::leak` and nothing else refers to it.
unsafe fn free_leaked<T>(provider: &'static T) {
    // SAFETY: per the caller, the last reference to a leaked Box.
    drop(unsafe { Box::from_raw(provider as *const T as *mut T) });
}

/// [`ProviderHost`] over the attached framework and a platform.
pub struct FrameworkHost<P: Platform + PlatformTimers> {
    platform: &'static P,
}

impl<P: Platform + PlatformTimers> FrameworkHost<P> {
    /// A host for `platform`, leaked: providers keep it for their lifetime.
    pub fn leaked(platform: &'static P) -> &'static Self {
        Box::leak(Box::new(FrameworkHost { platform }))
    }
}

impl<P: Platform + PlatformTimers> ProviderHost for FrameworkHost<P> {
    fn probe_create(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
        aframes: i32,
        parg: usize,
    ) -> u32 {
        registry::probe_create(ProviderId(provider), module, function, name, aframes, parg)
    }
    fn probe_lookup(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
    ) -> u32 {
        registry::probe_lookup(ProviderId(provider), module, function, name)
    }
    fn probe(&self, id: u32, args: [u64; 5]) {
        rdtrace_framework::dtrace_probe(id, args[0], args[1], args[2], args[3], args[4]);
    }
    fn cpu_count(&self) -> usize {
        self.platform.cpu_count()
    }
    fn cpu_id(&self) -> usize {
        self.platform.cpu_id()
    }
    fn sync(&self) {
        self.platform.sync();
    }
    fn monotonic_ns(&self) -> u64 {
        self.platform.monotonic_ns()
    }
    fn timer_create(
        &self,
        cpu: Option<usize>,
        interval_ns: u64,
        func: fn(usize),
        arg: usize,
    ) -> Option<TimerId> {
        self.platform.timer_create(cpu, interval_ns, func, arg)
    }
    fn timer_destroy(&self, id: TimerId) {
        self.platform.timer_destroy(id);
    }
}

/// Attributes of profile, syscall and sdt: evolving names and arguments,
/// private module/function naming.
pub const EVOLVING_ATTR: ProviderAttributes = ProviderAttributes {
    provider: Attribute::EVOLVING_COMMON,
    module: Attribute::PRIVATE_UNKNOWN,
    function: Attribute::PRIVATE_UNKNOWN,
    name: Attribute::EVOLVING_COMMON,
    args: Attribute::EVOLVING_COMMON,
};

/// Attributes of fbt: everything below the provider name is private.
pub const FBT_ATTR: ProviderAttributes = ProviderAttributes {
    provider: Attribute::EVOLVING_COMMON,
    module: Attribute::PRIVATE_UNKNOWN,
    function: Attribute::PRIVATE_UNKNOWN,
    name: Attribute::PRIVATE_UNKNOWN,
    args: Attribute::PRIVATE_UNKNOWN,
};

struct ProfileOps(&'static ProfileProvider);

impl ProviderOps for ProfileOps {
    fn provide(&self, provider: ProviderId, desc: Option<&ProbeDescription<'_>>) {
        self.0.set_handle(provider.0);
        match desc {
            Some(d) if crate::profile::parse(d.name).is_ok() => self.0.provide(Some(d.name)),
            _ => self.0.provide(None),
        }
    }
    fn enable(&self, id: u32, _parg: usize) {
        self.0.enable(id);
    }
    fn disable(&self, id: u32, _parg: usize) {
        self.0.disable(id);
    }
    fn destroy(&self, id: u32, _parg: usize) {
        self.0.destroy(id);
    }
    fn usermode(&self, _id: u32, _parg: usize) -> bool {
        // Timer callbacks run in kernel mode; user-mode attribution would
        // come from the interrupted frame, which the platform does not expose.
        false
    }
    fn has_usermode(&self) -> bool {
        true
    }
}

/// Register the profile provider (`profile`, KERNEL|USER privilege).
pub fn register_profile(
    host: &'static dyn ProviderHost,
) -> Result<(ProviderId, &'static ProfileProvider), Errno> {
    let provider: &'static ProfileProvider = Box::leak(Box::new(ProfileProvider::new(host)));
    let id = registry::register(
        "profile",
        &EVOLVING_ATTR,
        DTRACE_PRIV_KERNEL | DTRACE_PRIV_USER,
        None,
        Box::new(ProfileOps(provider)),
    )
    .inspect_err(|_| {
        // SAFETY: leaked just above; the framework refused it and dropped
        // the ops that borrowed it, so nothing refers to it.
        unsafe { free_leaked(provider) };
    })?;
    provider.set_handle(id.0);
    Ok((id, provider))
}

struct SyscallOps(&'static SyscallProvider);

impl ProviderOps for SyscallOps {
    fn provide(&self, provider: ProviderId, _desc: Option<&ProbeDescription<'_>>) {
        self.0.set_handle(provider.0);
        self.0.provide();
    }
    fn enable(&self, id: u32, parg: usize) {
        self.0.enable(id, parg);
    }
    fn disable(&self, id: u32, parg: usize) {
        self.0.disable(id, parg);
    }
    fn destroy(&self, id: u32, parg: usize) {
        self.0.destroy(id, parg);
    }
    fn getargval(&self, _id: u32, parg: usize, argno: i32, _aframes: i32) -> Option<u64> {
        self.0.arg_value(parg, argno)
    }
}

/// Register the syscall provider over `table` (`syscall`, USER privilege).
pub fn register_syscall(
    host: &'static dyn ProviderHost,
    table: &'static dyn SyscallTable,
) -> Result<(ProviderId, &'static SyscallProvider), Errno> {
    let provider: &'static SyscallProvider = Box::leak(Box::new(SyscallProvider::new(host, table)));
    let id = registry::register(
        "syscall",
        &EVOLVING_ATTR,
        DTRACE_PRIV_USER,
        None,
        Box::new(SyscallOps(provider)),
    )
    .inspect_err(|_| {
        // SAFETY: leaked just above; the framework refused it and dropped
        // the ops that borrowed it, so nothing refers to it.
        unsafe { free_leaked(provider) };
    })?;
    provider.set_handle(id.0);
    Ok((id, provider))
}

/// Where an SDT provider finds the linker sets of the files to provide from.
pub trait SdtSource: Sync {
    /// Call `f` with the sets of every loaded file.
    fn for_each_file(&self, f: &mut dyn FnMut(&crate::sdt::LinkerSets<'_>));
}

struct SdtOps {
    provider: &'static SdtProvider,
    source: &'static dyn SdtSource,
}

impl ProviderOps for SdtOps {
    fn provide(&self, provider: ProviderId, _desc: Option<&ProbeDescription<'_>>) {
        self.provider.set_handle(provider.0);
        self.source.for_each_file(&mut |sets| {
            // SAFETY: the source hands out the linker sets of loaded files,
            // whose records stay valid while their probes exist.
            unsafe { self.provider.provide_file(sets) };
        });
    }
    fn enable(&self, id: u32, parg: usize) {
        // ProviderOps::enable cannot fail; a tracepoint that cannot be
        // patched leaves only the id-tested call sites firing.
        let _ = self.provider.enable(id, parg);
    }
    fn disable(&self, id: u32, parg: usize) {
        self.provider.disable(id, parg);
    }
    fn destroy(&self, id: u32, parg: usize) {
        self.provider.destroy(id, parg);
    }
    fn getargdesc(&self, _id: u32, parg: usize, desc: &mut ArgDesc) -> bool {
        let mut found = None;
        self.source.for_each_file(&mut |sets| {
            if found.is_none() {
                // SAFETY: as in `provide`.
                found = unsafe { crate::sdt::argtype(sets, parg, desc.ndx) }
                    .map(|(native, xlate)| (String::from(native), String::from(xlate)));
            }
        });
        match found {
            Some((native, xlate)) => {
                desc.set_native(&native);
                if !xlate.is_empty() {
                    desc.set_xlate(&xlate);
                }
            }
            None => desc.ndx = -1,
        }
        true
    }
    /// Only the sixth argument (argno 5) comes from here: the hook passes the
    /// first five as probe arguments. *Probe context.*
    fn getargval(&self, _id: u32, _parg: usize, argno: i32, _aframes: i32) -> Option<u64> {
        self.provider.arg_value(argno)
    }
}

/// Register one SDT provider named `name` (USER privilege).
pub fn register_sdt(
    name: &str,
    host: &'static dyn ProviderHost,
    text: &'static dyn TextWriter,
    source: &'static dyn SdtSource,
) -> Result<(ProviderId, &'static SdtProvider), Errno> {
    let arch = crate::sdt::patch::Arch::native().unwrap_or(crate::sdt::patch::Arch::X86_64);
    let provider: &'static SdtProvider =
        Box::leak(Box::new(SdtProvider::new(name, host, text, arch)));
    let id = registry::register(
        name,
        &EVOLVING_ATTR,
        DTRACE_PRIV_USER,
        None,
        Box::new(SdtOps { provider, source }),
    )
    .inspect_err(|_| {
        // SAFETY: leaked just above; the framework refused it and dropped
        // the ops that borrowed it, so nothing refers to it.
        unsafe { free_leaked(provider) };
    })?;
    provider.set_handle(id.0);
    Ok((id, provider))
}

/// Where the fbt provider finds modules and their function symbols.
pub trait FbtSource<I: Isa>: Sync {
    /// Provide every loaded module's functions to `fbt`.
    fn provide_all(&self, fbt: &FbtProvider<I>);
}

struct FbtOps<I: Isa + 'static> {
    provider: &'static FbtProvider<I>,
    source: &'static dyn FbtSource<I>,
}

impl<I: Isa + 'static> ProviderOps for FbtOps<I>
where
    I::Emulation: Send + Sync,
{
    fn provide(&self, provider: ProviderId, _desc: Option<&ProbeDescription<'_>>) {
        self.provider.set_handle(provider.0);
        self.source.provide_all(self.provider);
    }
    fn enable(&self, id: u32, parg: usize) {
        let _ = self.provider.enable(id, parg);
    }
    fn disable(&self, id: u32, parg: usize) {
        self.provider.disable(id, parg);
    }
    fn destroy(&self, id: u32, parg: usize) {
        self.provider.destroy(id, parg);
    }
}

/// Register the fbt provider (`fbt`, KERNEL privilege).
pub fn register_fbt<I: Isa + 'static>(
    host: &'static dyn ProviderHost,
    text: &'static dyn TextWriter,
    source: &'static dyn FbtSource<I>,
) -> Result<(ProviderId, &'static FbtProvider<I>), Errno>
where
    I::Emulation: Send + Sync,
{
    let provider: &'static FbtProvider<I> = Box::leak(Box::new(FbtProvider::new(host, text)));
    let id = registry::register(
        "fbt",
        &FBT_ATTR,
        DTRACE_PRIV_KERNEL,
        None,
        Box::new(FbtOps { provider, source }),
    )
    .inspect_err(|_| {
        // SAFETY: leaked just above; the framework refused it and dropped
        // the ops that borrowed it, so nothing refers to it.
        unsafe { free_leaked(provider) };
    })?;
    provider.set_handle(id.0);
    Ok((id, provider))
}
