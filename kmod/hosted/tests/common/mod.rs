//! Test harness: drives the hosted kernel's ioctls exactly as libdtrace
//! does on FreeBSD (argument bytes of `_IOC_SIZE`, user pointers inside).
#![allow(dead_code)]

pub mod dof_builder;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rdtrace_framework::abi::*;
use rdtrace_framework::provider::{ProviderAttributes, ProviderOps};
use rdtrace_framework::registry;
use rdtrace_hosted::{Errno, HostedConsumer, HostedKernel};

pub fn kernel() -> &'static HostedKernel {
    HostedKernel::get().expect("hosted kernel attaches")
}

pub fn open() -> HostedConsumer {
    kernel().open().expect("open")
}

/// A provider for tests: probes fired by the test itself.
pub struct TestProvider {
    pub enabled: AtomicUsize,
}

impl ProviderOps for TestProvider {
    fn enable(&self, _id: u32, _parg: usize) {
        self.enabled.fetch_add(1, Ordering::SeqCst);
    }
    fn disable(&self, _id: u32, _parg: usize) {
        self.enabled.fetch_sub(1, Ordering::SeqCst);
    }
    fn destroy(&self, _id: u32, _parg: usize) {}
    fn getargval(&self, _id: u32, _parg: usize, argno: i32, _aframes: i32) -> Option<u64> {
        Some(1000 + argno as u64)
    }
}

/// Registers provider `name` with probes `name:mod:func:<p>` for each `p`;
/// returns their ids.
pub fn test_provider(name: &str, probes: &[&str]) -> Vec<u32> {
    kernel();
    let id = registry::register(
        name,
        &ProviderAttributes::uniform(rdtrace_framework::Attribute::STABLE_COMMON),
        0,
        None,
        Box::new(TestProvider {
            enabled: AtomicUsize::new(0),
        }),
    )
    .expect("register");
    probes
        .iter()
        .map(|p| registry::probe_create(id, "mod", "func", p, 0, 0))
        .collect()
}

pub fn fire(id: u32, args: [u64; 5]) {
    rdtrace_framework::dtrace_probe(id, args[0], args[1], args[2], args[3], args[4]);
}

pub fn enable(c: &HostedConsumer, dof: &[u8]) -> Result<i32, Errno> {
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&(dof.as_ptr() as u64).to_ne_bytes());
    c.ioctl(DTRACEIOC_ENABLE, &mut arg)?;
    Ok(i32::from_ne_bytes(arg[8..12].try_into().unwrap()))
}

pub fn go(c: &HostedConsumer) -> Result<i32, Errno> {
    let mut arg = [0u8; 4];
    c.ioctl(DTRACEIOC_GO, &mut arg)?;
    Ok(i32::from_ne_bytes(arg))
}

pub fn stop(c: &HostedConsumer) -> Result<i32, Errno> {
    let mut arg = [0u8; 4];
    c.ioctl(DTRACEIOC_STOP, &mut arg)?;
    Ok(i32::from_ne_bytes(arg))
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Status {
    pub v: [u64; 10],
    pub killed: bool,
    pub exiting: bool,
}

impl Status {
    pub fn dyndrops(&self) -> u64 {
        self.v[0]
    }
    pub fn specdrops(&self) -> u64 {
        self.v[3]
    }
    pub fn specdrops_busy(&self) -> u64 {
        self.v[4]
    }
    pub fn specdrops_unavail(&self) -> u64 {
        self.v[5]
    }
    pub fn errors(&self) -> u64 {
        self.v[6]
    }
    pub fn filled(&self) -> u64 {
        self.v[7]
    }
    pub fn dblerrors(&self) -> u64 {
        self.v[9]
    }
}

pub fn status(c: &HostedConsumer) -> Result<Status, Errno> {
    let mut arg = [0u8; 88];
    c.ioctl(DTRACEIOC_STATUS, &mut arg)?;
    let mut s = Status::default();
    for i in 0..10 {
        s.v[i] = u64::from_ne_bytes(arg[i * 8..i * 8 + 8].try_into().unwrap());
    }
    s.killed = arg[80] != 0;
    s.exiting = arg[81] != 0;
    Ok(s)
}

#[derive(Debug, Default, Clone)]
pub struct Snap {
    pub data: Vec<u8>,
    pub drops: u64,
    pub errors: u32,
    pub oldest: u64,
    pub timestamp: u64,
}

fn snap(c: &HostedConsumer, cmd: u32, cpu: u32, cap: usize) -> Result<Snap, Errno> {
    let mut data = vec![0u8; cap];
    let mut desc = [0u8; 48];
    desc[0..8].copy_from_slice(&(cap as u64).to_ne_bytes());
    desc[8..12].copy_from_slice(&cpu.to_ne_bytes());
    desc[24..32].copy_from_slice(&(data.as_mut_ptr() as u64).to_ne_bytes());
    let mut arg = [0u8; 8];
    arg.copy_from_slice(&(desc.as_mut_ptr() as u64).to_ne_bytes());
    c.ioctl(cmd, &mut arg)?;
    let size = u64::from_ne_bytes(desc[0..8].try_into().unwrap()) as usize;
    data.truncate(size);
    Ok(Snap {
        data,
        errors: u32::from_ne_bytes(desc[12..16].try_into().unwrap()),
        drops: u64::from_ne_bytes(desc[16..24].try_into().unwrap()),
        oldest: u64::from_ne_bytes(desc[32..40].try_into().unwrap()),
        timestamp: u64::from_ne_bytes(desc[40..48].try_into().unwrap()),
    })
}

pub fn bufsnap(c: &HostedConsumer, cpu: u32, cap: usize) -> Result<Snap, Errno> {
    snap(c, DTRACEIOC_BUFSNAP, cpu, cap)
}

pub fn aggsnap(c: &HostedConsumer, cpu: u32, cap: usize) -> Result<Snap, Errno> {
    snap(c, DTRACEIOC_AGGSNAP, cpu, cap)
}

pub fn ncpu() -> u32 {
    use rdtrace_framework::Platform;
    kernel().platform().cpu_count() as u32
}

/// All CPUs' principal buffers concatenated (switch policy).
pub fn snap_all(c: &HostedConsumer, cap: usize) -> Vec<Snap> {
    (0..ncpu())
        .filter_map(|cpu| bufsnap(c, cpu, cap).ok())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub action: u16,
    pub size: u32,
    pub offset: u32,
    pub alignment: u16,
    pub format: u16,
    pub arg: u64,
}

fn parse_recs(b: &[u8], n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let r = &b[i * 32..i * 32 + 32];
            Rec {
                action: u16::from_ne_bytes(r[0..2].try_into().unwrap()),
                size: u32::from_ne_bytes(r[4..8].try_into().unwrap()),
                offset: u32::from_ne_bytes(r[8..12].try_into().unwrap()),
                alignment: u16::from_ne_bytes(r[12..14].try_into().unwrap()),
                format: u16::from_ne_bytes(r[14..16].try_into().unwrap()),
                arg: u64::from_ne_bytes(r[16..24].try_into().unwrap()),
            }
        })
        .collect()
}

/// EPROBE: (probe id, record size, records).
pub fn eprobe(c: &HostedConsumer, epid: u32) -> Result<(u32, u32, Vec<Rec>), Errno> {
    let mut buf = vec![0u8; 24 + 32 * 16];
    buf[0..4].copy_from_slice(&epid.to_ne_bytes());
    buf[20..24].copy_from_slice(&16i32.to_ne_bytes());
    let mut arg = [0u8; 56];
    arg[0..8].copy_from_slice(&(buf.as_mut_ptr() as u64).to_ne_bytes());
    c.ioctl(DTRACEIOC_EPROBE, &mut arg)?;
    let probe = u32::from_ne_bytes(buf[4..8].try_into().unwrap());
    let size = u32::from_ne_bytes(buf[16..20].try_into().unwrap());
    let n = i32::from_ne_bytes(buf[20..24].try_into().unwrap()) as usize;
    Ok((probe, size, parse_recs(&buf[24..], n.min(16))))
}

/// AGGDESC: (epid, size, records).
pub fn aggdesc(c: &HostedConsumer, aggid: u32) -> Result<(u32, u32, Vec<Rec>), Errno> {
    let mut buf = vec![0u8; 40 + 32 * 16];
    buf[20..24].copy_from_slice(&aggid.to_ne_bytes());
    buf[32..36].copy_from_slice(&16i32.to_ne_bytes());
    let mut arg = [0u8; 8];
    arg.copy_from_slice(&(buf.as_mut_ptr() as u64).to_ne_bytes());
    c.ioctl(DTRACEIOC_AGGDESC, &mut arg)?;
    let epid = u32::from_ne_bytes(buf[24..28].try_into().unwrap());
    let size = u32::from_ne_bytes(buf[28..32].try_into().unwrap());
    let n = i32::from_ne_bytes(buf[32..36].try_into().unwrap()) as usize;
    Ok((epid, size, parse_recs(&buf[40..], n.min(16))))
}

/// FORMAT: the format string with id `fmt`.
pub fn format(c: &HostedConsumer, fmt: u16) -> Result<String, Errno> {
    let mut arg = [0u8; 16];
    arg[12..14].copy_from_slice(&fmt.to_ne_bytes());
    c.ioctl(DTRACEIOC_FORMAT, &mut arg)?;
    let len = i32::from_ne_bytes(arg[8..12].try_into().unwrap()) as usize;
    let mut s = vec![0u8; len];
    arg[0..8].copy_from_slice(&(s.as_mut_ptr() as u64).to_ne_bytes());
    c.ioctl(DTRACEIOC_FORMAT, &mut arg)?;
    s.pop();
    Ok(String::from_utf8(s).unwrap())
}

/// One record read back from a principal buffer.
#[derive(Debug, Clone)]
pub struct Record {
    pub epid: u32,
    pub timestamp: u64,
    pub bytes: Vec<u8>,
}

/// Splits buffer data into records using each EPID's size (from EPROBE),
/// skipping EPIDNONE pad words.
pub fn records(c: &HostedConsumer, data: &[u8]) -> Vec<Record> {
    let mut sizes: HashMap<u32, u32> = HashMap::new();
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 4 <= data.len() {
        let epid = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
        if epid == 0 {
            off += 4;
            continue;
        }
        let size = *sizes
            .entry(epid)
            .or_insert_with(|| eprobe(c, epid).expect("eprobe").1) as usize;
        assert!(size >= 12, "record size {size} for epid {epid}");
        let bytes = data[off..off + size].to_vec();
        let hi = u32::from_ne_bytes(bytes[4..8].try_into().unwrap()) as u64;
        let lo = u32::from_ne_bytes(bytes[8..12].try_into().unwrap()) as u64;
        out.push(Record {
            epid,
            timestamp: (hi << 32) | lo,
            bytes,
        });
        off += size;
    }
    out
}

/// Every record on every CPU, in timestamp order.
pub fn all_records(c: &HostedConsumer) -> Vec<Record> {
    let mut v: Vec<Record> = snap_all(c, 1 << 20)
        .iter()
        .flat_map(|s| records(c, &s.data))
        .collect();
    v.sort_by_key(|r| r.timestamp);
    v
}

pub fn u64_at(b: &[u8], off: u32) -> u64 {
    u64::from_ne_bytes(b[off as usize..off as usize + 8].try_into().unwrap())
}
pub fn u32_at(b: &[u8], off: u32) -> u32 {
    u32::from_ne_bytes(b[off as usize..off as usize + 4].try_into().unwrap())
}
