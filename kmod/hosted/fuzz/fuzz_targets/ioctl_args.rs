//! Arbitrary command numbers and argument bytes on a fresh consumer: must
//! never crash, only return errnos.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdtrace_hosted::HostedKernel;

fuzz_target!(|input: (u32, Vec<u8>)| {
    let (cmd, mut arg) = input;
    let k = HostedKernel::get().expect("kernel");
    let c = k.open().expect("open");
    let need = ((cmd >> 16) & 0x1fff) as usize;
    arg.resize(need.max(arg.len()), 0);
    let _ = c.ioctl(cmd, &mut arg);
});
