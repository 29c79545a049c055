//! Time: binuptime(9), nanotime(9), nanouptime(9), `ticks` and `hz`.
//!
//! Uptime counts from the moment the fake kernel "booted" (first use), on
//! the host's monotonic clock; wall time is the host's real-time clock.
//! `ticks` is advanced from uptime whenever a thread enters the kernel or a
//! callout is dispatched (there is no hardclock interrupt), so module code
//! sees it move at `hz` = 1000 like FreeBSD's default. All callable in probe
//! context (no locks, no allocation).

use std::sync::OnceLock;
use std::time::Instant;

use super::DataObject;

/// Ticks per second (FreeBSD's default `hz`).
pub const HZ: i32 = 1000;

static BOOT: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the fake boot.
pub fn uptime_ns() -> u64 {
    BOOT.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1_000_000_000
}

/// Uptime as FreeBSD `sbintime_t` (32.32 fixed-point seconds).
pub fn sbinuptime() -> i64 {
    ns_to_sbt(uptime_ns())
}

/// Convert nanoseconds to `sbintime_t`.
pub fn ns_to_sbt(ns: u64) -> i64 {
    let secs = ns / 1_000_000_000;
    let rem = ns % 1_000_000_000;
    ((secs << 32) + ((rem << 32) / 1_000_000_000)) as i64
}

/// Convert `sbintime_t` to nanoseconds (negative values clamp to 0).
pub fn sbt_to_ns(sbt: i64) -> u64 {
    if sbt <= 0 {
        return 0;
    }
    let sbt = sbt as u64;
    (sbt >> 32) * 1_000_000_000 + (((sbt & 0xffff_ffff) * 1_000_000_000) >> 32)
}

/// Bring `ticks` up to date with uptime.
pub fn update_ticks() {
    let t = (uptime_ns() / (1_000_000_000 / HZ as u64)) as i32;
    super::write_i32("ticks", t);
}

extern "C" fn kpi_binuptime(bt: *mut [u64; 2]) {
    let ns = uptime_ns();
    let sec = ns / 1_000_000_000;
    let frac = (((ns % 1_000_000_000) as u128) << 64) / 1_000_000_000u128;
    // SAFETY: the caller passes a `struct bintime` (two 8-byte words).
    unsafe { std::ptr::write_unaligned(bt, [sec, frac as u64]) };
}

fn write_timespec(ts: *mut [i64; 2], ns: u64) {
    // SAFETY: the caller passes a `struct timespec` (two 8-byte words).
    unsafe {
        std::ptr::write_unaligned(
            ts,
            [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64],
        )
    };
}

extern "C" fn kpi_nanouptime(ts: *mut [i64; 2]) {
    write_timespec(ts, uptime_ns());
}

extern "C" fn kpi_nanotime(ts: *mut [i64; 2]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    write_timespec(ts, now);
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("binuptime", kpi_binuptime as *const () as usize),
        ("nanouptime", kpi_nanouptime as *const () as usize),
        ("nanotime", kpi_nanotime as *const () as usize),
        // The get* variants are the cheap, tick-precision ones in FreeBSD;
        // the harness has only one clock, so they are the precise ones.
        ("getbinuptime", kpi_binuptime as *const () as usize),
        ("getnanouptime", kpi_nanouptime as *const () as usize),
        ("getnanotime", kpi_nanotime as *const () as usize),
    ]
}

pub(super) fn data() -> Vec<DataObject> {
    vec![
        DataObject::int("hz", HZ),
        DataObject::int("ticks", 0),
        DataObject {
            name: "tick_sbt",
            size: 8,
            align: 8,
            init: ((1i64 << 32) / HZ as i64).to_le_bytes().to_vec(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbintime_conversions() {
        assert_eq!(ns_to_sbt(1_000_000_000), 1 << 32);
        assert_eq!(sbt_to_ns(1 << 32), 1_000_000_000);
        assert_eq!(sbt_to_ns(1 << 31), 500_000_000);
        assert_eq!(sbt_to_ns(-5), 0);
        let ns = 123_456_789_012u64;
        assert!(sbt_to_ns(ns_to_sbt(ns)).abs_diff(ns) <= 1);
        let a = uptime_ns();
        assert!(uptime_ns() >= a, "monotonic");
    }
}
