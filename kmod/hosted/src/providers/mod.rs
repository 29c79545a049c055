//! The hosted halves of rdtrace's providers: what the in-process kernel uses
//! instead of FreeBSD's KPI (ELF symbol tables instead of linker files,
//! SIGTRAP instead of the breakpoint trap, threads instead of callouts, a
//! system call table tests drive by hand).
//!
//! Included in the hosted crate with one line in its `lib.rs`:
//! `pub mod providers;`

pub mod elf_symbols;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod fbt_live;
pub mod sdt;
pub mod syscall;

use rdtrace_framework::platform::{Errno, Platform, PlatformTimers};
use rdtrace_framework::provider::ProviderId;
use rdtrace_providers::glue::{self, FrameworkHost};
use rdtrace_providers::profile::ProfileProvider;
use rdtrace_providers::sdt::SdtProvider;
use rdtrace_providers::syscall::SyscallProvider;

/// The providers registered on a hosted kernel.
pub struct HostedProviders {
    pub profile: (ProviderId, &'static ProfileProvider),
    pub syscall: (ProviderId, &'static SyscallProvider),
    pub syscall_table: &'static syscall::HostedSyscallTable,
    /// One per provider name found in this process's SDT linker sets.
    pub sdt: Vec<(ProviderId, &'static SdtProvider)>,
}

/// Code patching is never needed for hosted SDT (rdtrace's own probes are
/// id-tested, with no tracepoints); this writer refuses.
struct NoText;

impl rdtrace_providers::text::TextWriter for NoText {
    fn read_text(&self, _addr: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::ENOTSUP)
    }
    unsafe fn write_text(&self, _addr: u64, _bytes: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOTSUP)
    }
}

/// Register profile, syscall and the SDT providers of this process on the
/// attached framework, over `platform`. Call once, after `attach`.
pub fn register<P: Platform + PlatformTimers>(
    platform: &'static P,
) -> Result<HostedProviders, Errno> {
    let host = FrameworkHost::leaked(platform);
    let own: &'static rdtrace_providers::sdt::OwnHost =
        Box::leak(Box::new(rdtrace_providers::sdt::OwnHost(host)));
    rdtrace_providers::sdt::set_own_host(Some(own));
    let profile = glue::register_profile(host)?;
    // Hosted timers call the provider directly (no interrupt frames): fwcore2.
    profile
        .1
        .set_aframes(rdtrace_providers::profile::HOSTED_AFRAMES);
    let syscall_table: &'static syscall::HostedSyscallTable = Box::leak(Box::default());
    let syscall = glue::register_syscall(host, syscall_table)?;
    let mut sdt = Vec::new();
    for name in sdt::own_provider_names() {
        sdt.push(glue::register_sdt(
            &name,
            host,
            &NoText,
            &sdt::OwnLinkerSets,
        )?);
    }
    Ok(HostedProviders {
        profile,
        syscall,
        syscall_table,
        sdt,
    })
}

/// [`register`] once per process: later calls return the same providers
/// (or the same error). Safe to call from `HostedKernel::get` after attach
/// and from tests.
pub fn registered<P: Platform + PlatformTimers>(
    platform: &'static P,
) -> Result<&'static HostedProviders, Errno> {
    static REGISTERED: std::sync::OnceLock<Result<HostedProviders, Errno>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let providers = register(platform)?;
            if let Some(fw) = rdtrace_framework::registry::get() {
                fw.provide_all(None);
            }
            Ok(providers)
        })
        .as_ref()
        .map_err(|e| *e)
}

#[cfg(test)]
mod tests;
