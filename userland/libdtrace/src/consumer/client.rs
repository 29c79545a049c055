//! Typed `DTRACEIOC_*` calls over a [`Device`].
//!
//! Each method builds the argument exactly as libdtrace does on FreeBSD
//! (including the pointer-to-pointer convention of BUFSNAP, AGGSNAP, EPROBE,
//! AGGDESC and DOFGET, whose argument bytes carry the address of the real
//! descriptor in this process) and decodes the answer into ffi types.

use rdtrace_ffi::buffer::BufDesc;
use rdtrace_ffi::consumer::{Conf, EnableIo, Status};
use rdtrace_ffi::ioctl::{self, ioc_len};
use rdtrace_ffi::pod::Pod;
use rdtrace_ffi::probe::{ArgDesc, ProbeDesc, ProviderDesc};
use rdtrace_ffi::record::{AggDesc, EprobeDesc, FmtDesc, RecDesc};

use super::device::{Device, IoctlError};

/// An enabled probe's record layout, as EPROBE reports it.
#[derive(Clone, Debug)]
pub struct EnabledProbeInfo {
    pub epid: u32,
    pub probe_id: u32,
    pub uarg: u64,
    /// Record size including the 12-byte header.
    pub size: u32,
    pub recs: Vec<RecDesc>,
}

/// An aggregation's layout, as AGGDESC reports it.
#[derive(Clone, Debug)]
pub struct AggregationInfo {
    pub aggid: u32,
    pub epid: u32,
    /// Size of one key + value entry.
    pub size: u32,
    /// Records: the aggregation-id word's record first, then key records,
    /// then the aggregating action's record (offsets relative to the entry).
    pub recs: Vec<RecDesc>,
}

/// The result of one BUFSNAP or AGGSNAP.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub desc: BufDesc,
    /// The bytes the kernel copied (`desc.size` of them).
    pub data: Vec<u8>,
}

/// A consumer's view of one DTrace control device.
pub struct Client {
    device: Box<dyn Device>,
}

fn pointer_arg(cmd: u32, address: u64) -> Vec<u8> {
    let mut arg = vec![0u8; ioc_len(cmd)];
    arg[..8].copy_from_slice(&address.to_ne_bytes());
    arg
}

/// Grow the record capacity of an EPROBE/AGGDESC request until the kernel's
/// answer fits, as libdtrace does.
fn with_record_capacity<T>(
    mut attempt: impl FnMut(usize) -> Result<Option<T>, IoctlError>,
) -> Result<T, IoctlError> {
    let mut capacity = 1usize;
    loop {
        if let Some(done) = attempt(capacity)? {
            return Ok(done);
        }
        capacity = capacity.saturating_mul(2);
    }
}

impl Client {
    pub fn new(device: Box<dyn Device>) -> Client {
        Client { device }
    }

    pub fn device(&self) -> &dyn Device {
        self.device.as_ref()
    }

    fn call<T: Pod>(&self, cmd: u32, value: &mut T) -> Result<(), IoctlError> {
        debug_assert_eq!(core::mem::size_of::<T>(), ioc_len(cmd));
        self.device.ioctl(cmd, value.as_bytes_mut())
    }

    /// DTRACEIOC_CONF.
    pub fn conf(&self) -> Result<Conf, IoctlError> {
        let mut conf = Conf::zeroed();
        self.call(ioctl::DTRACEIOC_CONF, &mut conf)?;
        Ok(conf)
    }

    /// DTRACEIOC_PROVIDER: attributes and privileges of a provider.
    pub fn provider(&self, name: &str) -> Result<ProviderDesc, IoctlError> {
        let mut desc = ProviderDesc::new(name).map_err(|_| IoctlError {
            cmd: ioctl::DTRACEIOC_PROVIDER,
            errno: libc::EINVAL,
        })?;
        self.call(ioctl::DTRACEIOC_PROVIDER, &mut desc)?;
        Ok(desc)
    }

    /// Every probe (DTRACEIOC_PROBES) or every probe matching `pattern`
    /// (DTRACEIOC_PROBEMATCH), in id order.
    pub fn probes(&self, pattern: Option<&ProbeDesc>) -> Result<Vec<ProbeDesc>, IoctlError> {
        let cmd = if pattern.is_some() {
            ioctl::DTRACEIOC_PROBEMATCH
        } else {
            ioctl::DTRACEIOC_PROBES
        };
        let mut found = Vec::new();
        let mut next_id = 0u32;
        loop {
            let mut desc = pattern.copied().unwrap_or_else(ProbeDesc::zeroed);
            desc.id = next_id;
            match self.call(cmd, &mut desc) {
                Ok(()) => {
                    next_id = desc.id.saturating_add(1);
                    found.push(desc);
                    if next_id == u32::MAX {
                        return Ok(found);
                    }
                }
                Err(e) if e.errno == libc::ESRCH => return Ok(found),
                Err(e) => return Err(e),
            }
        }
    }

    /// The first probe whose id is at least `id` (DTRACEIOC_PROBES), if any.
    pub fn probes_from(&self, id: u32) -> Result<Option<ProbeDesc>, IoctlError> {
        let mut desc = ProbeDesc::zeroed();
        desc.id = id;
        match self.call(ioctl::DTRACEIOC_PROBES, &mut desc) {
            Ok(()) => Ok(Some(desc)),
            Err(e) if e.errno == libc::ESRCH => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// DTRACEIOC_PROBEARG: the native and translated type of argument `ndx`.
    pub fn probe_arg(&self, probe_id: u32, ndx: i32) -> Result<ArgDesc, IoctlError> {
        let mut desc = ArgDesc::request(probe_id, ndx);
        self.call(ioctl::DTRACEIOC_PROBEARG, &mut desc)?;
        Ok(desc)
    }

    /// DTRACEIOC_ENABLE with a DOF image; returns the number of probes matched.
    pub fn enable(&self, dof: &[u8]) -> Result<i32, IoctlError> {
        let mut io = EnableIo {
            dof: dof.as_ptr() as u64,
            n_matched: 0,
            pad: 0,
        };
        self.call(ioctl::DTRACEIOC_ENABLE, &mut io)?;
        Ok(io.n_matched)
    }

    /// DTRACEIOC_EPROBE.
    pub fn eprobe(&self, epid: u32) -> Result<EnabledProbeInfo, IoctlError> {
        with_record_capacity(|capacity| {
            let size = EprobeDesc::size_for(capacity).unwrap_or(usize::MAX);
            let mut buf = vec![0u8; size];
            let mut head = EprobeDesc::zeroed();
            head.epid = epid;
            head.nrecs = i32::try_from(capacity).unwrap_or(i32::MAX);
            head.write_at(&mut buf, 0);
            let mut arg = pointer_arg(ioctl::DTRACEIOC_EPROBE, buf.as_mut_ptr() as u64);
            self.device.ioctl(ioctl::DTRACEIOC_EPROBE, &mut arg)?;
            let head = EprobeDesc::from_bytes(&buf).unwrap_or_else(EprobeDesc::zeroed);
            let nrecs = usize::try_from(head.nrecs).unwrap_or(0);
            if nrecs > capacity {
                return Ok(None);
            }
            let recs = (0..nrecs)
                .filter_map(|i| EprobeDesc::rec_in(&buf, i))
                .collect();
            Ok(Some(EnabledProbeInfo {
                epid: head.epid,
                probe_id: head.probeid,
                uarg: head.uarg,
                size: head.size,
                recs,
            }))
        })
    }

    /// DTRACEIOC_AGGDESC.
    pub fn aggdesc(&self, aggid: u32) -> Result<AggregationInfo, IoctlError> {
        with_record_capacity(|capacity| {
            let size = AggDesc::size_for(capacity).unwrap_or(usize::MAX);
            let mut buf = vec![0u8; size];
            let mut head = AggDesc::zeroed();
            head.id = aggid;
            head.nrecs = i32::try_from(capacity).unwrap_or(i32::MAX);
            head.write_at(&mut buf, 0);
            let mut arg = pointer_arg(ioctl::DTRACEIOC_AGGDESC, buf.as_mut_ptr() as u64);
            self.device.ioctl(ioctl::DTRACEIOC_AGGDESC, &mut arg)?;
            let head = AggDesc::from_bytes(&buf).unwrap_or_else(AggDesc::zeroed);
            let nrecs = usize::try_from(head.nrecs).unwrap_or(0);
            if nrecs > capacity {
                return Ok(None);
            }
            let recs = (0..nrecs)
                .filter_map(|i| AggDesc::rec_in(&buf, i))
                .collect();
            Ok(Some(AggregationInfo {
                aggid: head.id,
                epid: head.epid,
                size: head.size,
                recs,
            }))
        })
    }

    /// DTRACEIOC_FORMAT: the string behind a 1-based format id.
    pub fn format(&self, format: u16) -> Result<String, IoctlError> {
        // First ask for the length (a zero-length request gets it written back).
        let mut desc = FmtDesc {
            string: 0,
            length: 0,
            format,
            pad: 0,
        };
        self.call(ioctl::DTRACEIOC_FORMAT, &mut desc)?;
        let length = usize::try_from(desc.length).unwrap_or(0).max(1);
        let mut text = vec![0u8; length];
        let mut desc = FmtDesc {
            string: text.as_mut_ptr() as u64,
            length: i32::try_from(length).unwrap_or(i32::MAX),
            format,
            pad: 0,
        };
        self.call(ioctl::DTRACEIOC_FORMAT, &mut desc)?;
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Ok(String::from_utf8_lossy(&text[..end]).into_owned())
    }

    /// DTRACEIOC_GO: start tracing; returns the CPU BEGIN fired on.
    pub fn go(&self) -> Result<i32, IoctlError> {
        let mut cpu = 0i32;
        self.device.ioctl(ioctl::DTRACEIOC_GO, cpu.as_bytes_mut())?;
        Ok(cpu)
    }

    /// DTRACEIOC_STOP: stop tracing; returns the CPU END fired on.
    pub fn stop(&self) -> Result<i32, IoctlError> {
        let mut cpu = 0i32;
        self.device
            .ioctl(ioctl::DTRACEIOC_STOP, cpu.as_bytes_mut())?;
        Ok(cpu)
    }

    /// DTRACEIOC_STATUS.
    pub fn status(&self) -> Result<Status, IoctlError> {
        let mut status = Status::zeroed();
        self.call(ioctl::DTRACEIOC_STATUS, &mut status)?;
        Ok(status)
    }

    fn snapshot(&self, cmd: u32, cpu: u32, capacity: usize) -> Result<Snapshot, IoctlError> {
        let mut data = vec![0u8; capacity];
        let mut desc = BufDesc {
            size: capacity as u64,
            cpu,
            data: data.as_mut_ptr() as u64,
            ..BufDesc::default()
        };
        let mut arg = pointer_arg(cmd, (&mut desc as *mut BufDesc) as u64);
        self.device.ioctl(cmd, &mut arg)?;
        let copied = usize::try_from(desc.size).unwrap_or(0).min(capacity);
        data.truncate(copied);
        Ok(Snapshot { desc, data })
    }

    /// DTRACEIOC_BUFSNAP of one CPU's principal buffer; `capacity` must be at
    /// least the kernel's per-CPU buffer size (the `bufsize` option).
    pub fn bufsnap(&self, cpu: u32, capacity: usize) -> Result<Snapshot, IoctlError> {
        self.snapshot(ioctl::DTRACEIOC_BUFSNAP, cpu, capacity)
    }

    /// DTRACEIOC_AGGSNAP of one CPU's aggregation buffer.
    pub fn aggsnap(&self, cpu: u32, capacity: usize) -> Result<Snapshot, IoctlError> {
        self.snapshot(ioctl::DTRACEIOC_AGGSNAP, cpu, capacity)
    }

    /// DTRACEIOC_DOFGET: the kernel's option values as a DOF image.
    pub fn dofget(&self) -> Result<Vec<u8>, IoctlError> {
        use rdtrace_ffi::dof::DofHdr;
        let mut head = DofHdr::zeroed();
        head.loadsz = core::mem::size_of::<DofHdr>() as u64;
        let mut arg = pointer_arg(ioctl::DTRACEIOC_DOFGET, (&mut head as *mut DofHdr) as u64);
        self.device.ioctl(ioctl::DTRACEIOC_DOFGET, &mut arg)?;
        let size = usize::try_from(head.loadsz).unwrap_or(0);
        let mut image = vec![0u8; size.max(core::mem::size_of::<DofHdr>())];
        head.write_at(&mut image, 0);
        let mut arg = pointer_arg(ioctl::DTRACEIOC_DOFGET, image.as_mut_ptr() as u64);
        self.device.ioctl(ioctl::DTRACEIOC_DOFGET, &mut arg)?;
        Ok(image)
    }
}
