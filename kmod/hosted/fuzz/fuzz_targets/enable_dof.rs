//! Arbitrary bytes as a DOF for DTRACEIOC_ENABLE, then GO/STOP/BUFSNAP when
//! accepted: must never crash; errors must be clean errnos.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdtrace_framework::abi::*;
use rdtrace_hosted::{Errno, HostedKernel};

fuzz_target!(|data: &[u8]| {
    let k = HostedKernel::get().expect("kernel");
    let c = k.open().expect("open");
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&(data.as_ptr() as u64).to_ne_bytes());
    match c.ioctl(DTRACEIOC_ENABLE, &mut arg) {
        Ok(()) => {
            let mut cpu = [0u8; 4];
            if c.ioctl(DTRACEIOC_GO, &mut cpu).is_ok() {
                let _ = c.ioctl(DTRACEIOC_STOP, &mut cpu);
            }
        }
        Err(e) => assert!(
            [
                Errno::EINVAL,
                Errno::E2BIG,
                Errno::ENOMEM,
                Errno::ENOSPC,
                Errno::EACCES
            ]
            .contains(&e),
            "unexpected errno {e:?}"
        ),
    }
});
