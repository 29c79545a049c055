//! The consumer reads as many CPU buffers as the kernel behind its device
//! has — never a count guessed from the machine the consumer runs on.

use std::cell::RefCell;
use std::rc::Rc;

use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::device::{Device, HostedDevice, IoctlError};
use rdtrace_libdtrace::consumer::session::{RunConfig, Session};
use rdtrace_libdtrace::output::stack::NoSymbols;
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::OutputOptions;

/// A kernel with `cpus` CPUs and no buffers: every snapshot answers ENOENT
/// (as FreeBSD does for an absent CPU), and the commands are counted.
struct CountingDevice {
    cpus: u32,
    bufsnaps: Rc<RefCell<u32>>,
}

impl Device for CountingDevice {
    fn ioctl(&self, cmd: u32, _arg: &mut [u8]) -> Result<(), IoctlError> {
        if cmd == rdtrace_ffi::ioctl::DTRACEIOC_BUFSNAP {
            *self.bufsnaps.borrow_mut() += 1;
        }
        Err(IoctlError {
            cmd,
            errno: libc::ENOENT,
        })
    }

    fn describe(&self) -> &str {
        "counting device"
    }

    fn is_hosted(&self) -> bool {
        false
    }

    fn cpu_count(&self) -> u32 {
        self.cpus
    }
}

#[test]
fn a_session_snapshots_every_cpu_the_device_reports() {
    // 37 is not a plausible host CPU count, so a host-derived guess fails.
    let bufsnaps = Rc::new(RefCell::new(0));
    let device = CountingDevice {
        cpus: 37,
        bufsnaps: bufsnaps.clone(),
    };
    let mut session = Session::new(
        Client::new(Box::new(device)),
        RunConfig::default(),
        Default::default(),
    );
    assert_eq!(session.cpus(), 37);
    let symbols = NoSymbols;
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), OutputOptions::default(), &symbols);
    session.consume(&mut sink).expect("absent CPUs are skipped");
    assert_eq!(*bufsnaps.borrow(), 37);
}

#[test]
fn an_explicit_cpu_count_wins() {
    let device = CountingDevice {
        cpus: 37,
        bufsnaps: Rc::new(RefCell::new(0)),
    };
    let config = RunConfig {
        ncpus: Some(2),
        ..RunConfig::default()
    };
    let session = Session::new(Client::new(Box::new(device)), config, Default::default());
    assert_eq!(session.cpus(), 2);
}

#[test]
fn the_hosted_kernel_reports_its_own_virtual_cpus() {
    use rdtrace_framework::platform::Platform;
    let device = HostedDevice::open().expect("hosted kernel opens");
    let kernel = rdtrace_hosted::HostedKernel::get().expect("hosted kernel");
    assert_eq!(
        device.cpu_count() as usize,
        kernel.platform().cpu_count(),
        "the consumer must read every hosted CPU's buffer"
    );
    assert!(device.cpu_count() >= 1);
}
