//! `rdtrace-ffi`: the `/dev/dtrace` ABI of current FreeBSD (12 and later),
//! shared by `rdtrace.ko`, the hosted kernel and userland. `#![no_std]`,
//! no allocation, LP64 only (amd64, arm64, riscv64).
//!
//! Every C struct is a `#[repr(C)]` mirror with compile-time checks of its
//! size, alignment and every field offset, and a proof that it has no
//! padding (so [`pod::Pod`] can view it as bytes); every closed set of
//! values is an enum or bitflags type with a fallible `TryFrom<raw>`.
//! Rust-style names are used, with the C name in each item's docs and as a
//! type alias (`dtrace_probedesc_t` = [`probe::ProbeDesc`]).
//!
//! Modules:
//! - [`pod`] — byte views of ABI structs, fixed-size C string helpers.
//! - [`types`] — basic typedefs (`dtrace_id_t`...), name lengths, sentinels.
//! - [`ioctl`] — `_IOC` encoding, `DTRACEIOC_*`, `DTRACEHIOC_*`, kinst.
//! - [`probe`] — `dtrace_probedesc_t`, `dtrace_repldesc_t`,
//!   `dtrace_providerdesc_t`, `dtrace_argdesc_t`, kinst's argument.
//! - [`record`] — `dtrace_recdesc_t`, `dtrace_eprobedesc_t`,
//!   `dtrace_aggdesc_t`, `dtrace_fmtdesc_t`.
//! - [`buffer`] — `dtrace_bufdesc_t`, `dtrace_rechdr_t`, `DTRACEBUF_*`,
//!   the per-CPU `CPU_DTRACE_*` flag word.
//! - [`consumer`] — `dtrace_conf_t`, `dtrace_status_t`, `dtrace_enable_io_t`.
//! - [`helper`] — `dof_helper_t`.
//! - [`attr`] — stability/class codes, `dtrace_attribute_t`, `dtrace_pattr_t`,
//!   `dtrace_ppriv_t`, `DTRACE_PRIV_*`.
//! - [`dof`] — the DOF header, section headers, section types and structs.
//! - [`dif`] — DIF instruction encoding, opcodes, built-in variables,
//!   subroutines, `dtrace_diftype_t`, `dtrace_difv_t`.
//! - [`action`] — `DTRACEACT_*`/`DTRACEAGG_*` kinds and classes, quantize /
//!   lquantize / llquantize / ustack argument packing and bucket math.
//! - [`option`] — `DTRACEOPT_*` indices, names, defaults, enumerated values.
//! - [`fault`] — `DTRACEFLT_*` codes, their messages, flag-word priority.
//! - [`state`] — consumer activity and speculation states.
//! - `kpi` (feature `kpi`, owned by the kernel-module side) — FreeBSD KPI
//!   bindings generated from `sys-headers/`.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod pod;

pub mod action;
pub mod attr;
pub mod buffer;
pub mod consumer;
pub mod dif;
pub mod dof;
pub mod fault;
pub mod helper;
pub mod ioctl;
pub mod option;
pub mod probe;
pub mod record;
pub mod state;
pub mod types;

/// A raw number that names no member of a closed ABI set (the error of every
/// `TryFrom<raw>` conversion in this crate). Carries the offending value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownValue(pub u64);

#[cfg(feature = "kpi")]
pub mod kpi;
