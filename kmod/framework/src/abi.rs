//! The ABI numbers the framework interprets (abi-facts §1-§5), named the way
//! FreeBSD's `sys/dtrace.h` names them. Argument blocks are parsed at byte
//! offsets (see `bytes.rs`) so a short or odd-sized block can never be
//! misread; the offsets used are those of the LP64 layouts in abi-facts §2.2.
//!
//! Probe context: constants only.

// ---- ioctl commands (LP64, current FreeBSD) --------------------------------
pub const DTRACEIOC_PROVIDER: u32 = 0xc05c_7801;
pub const DTRACEIOC_PROBES: u32 = 0xc184_7802;
pub const DTRACEIOC_BUFSNAP: u32 = 0x8008_7804;
pub const DTRACEIOC_PROBEMATCH: u32 = 0xc184_7805;
pub const DTRACEIOC_ENABLE: u32 = 0xc010_7806;
pub const DTRACEIOC_AGGSNAP: u32 = 0x8008_7807;
pub const DTRACEIOC_EPROBE: u32 = 0x8038_7808;
pub const DTRACEIOC_PROBEARG: u32 = 0xc10c_7809;
pub const DTRACEIOC_CONF: u32 = 0x4030_780a;
pub const DTRACEIOC_STATUS: u32 = 0x4058_780b;
pub const DTRACEIOC_GO: u32 = 0x4004_780c;
pub const DTRACEIOC_STOP: u32 = 0xc004_780d;
pub const DTRACEIOC_AGGDESC: u32 = 0x8008_780f;
pub const DTRACEIOC_FORMAT: u32 = 0xc010_7810;
pub const DTRACEIOC_DOFGET: u32 = 0x8008_7811;
pub const DTRACEIOC_REPLICATE: u32 = 0x8308_7812;
pub const DTRACEHIOC_REMOVE: u32 = 0x8004_7a02;
pub const DTRACEHIOC_ADDDOF: u32 = 0xc058_7a03;

/// The parameter length encoded in an ioctl command word.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x1fff) as usize
}

// ---- struct sizes -----------------------------------------------------------
pub const PROVIDERDESC_SIZE: usize = 92;
pub const PROBEDESC_SIZE: usize = 388;
pub const ARGDESC_SIZE: usize = 268;
pub const CONF_SIZE: usize = 48;
pub const STATUS_SIZE: usize = 88;
pub const BUFDESC_SIZE: usize = 48;
pub const FMTDESC_SIZE: usize = 16;
pub const ENABLE_IO_SIZE: usize = 16;
pub const RECDESC_SIZE: usize = 32;
pub const EPROBEDESC_HDR: usize = 24;
pub const AGGDESC_HDR: usize = 40;
pub const REPLDESC_SIZE: usize = 776;
pub const RECHDR_SIZE: u32 = 12;

pub const DTRACE_PROVNAMELEN: usize = 64;
pub const DTRACE_MODNAMELEN: usize = 64;
pub const DTRACE_FUNCNAMELEN: usize = 192;
pub const DTRACE_NAMELEN: usize = 64;
pub const DTRACE_ARGTYPELEN: usize = 128;

// probedesc field offsets
pub const PD_ID: usize = 0;
pub const PD_PROVIDER: usize = 4;
pub const PD_MOD: usize = 68;
pub const PD_FUNC: usize = 132;
pub const PD_NAME: usize = 324;

// ---- privileges ---------------------------------------------------------------
pub const DTRACE_PRIV_NONE: u32 = 0;
pub const DTRACE_PRIV_KERNEL: u32 = 0x1;
pub const DTRACE_PRIV_USER: u32 = 0x2;
pub const DTRACE_PRIV_PROC: u32 = 0x4;
pub const DTRACE_PRIV_OWNER: u32 = 0x8;
pub const DTRACE_PRIV_ZONEOWNER: u32 = 0x10;
pub const DTRACE_PRIV_ALL: u32 = 0x1f;

// ---- stability / class ----------------------------------------------------------
pub const DTRACE_STABILITY_MAX: u8 = 7;
pub const DTRACE_CLASS_MAX: u8 = 5;

// ---- consumer state activities (dtrace_activity_t) ------------------------------
pub const ACTIVITY_INACTIVE: u32 = 0;
pub const ACTIVITY_WARMUP: u32 = 1;
pub const ACTIVITY_ACTIVE: u32 = 2;
pub const ACTIVITY_DRAINING: u32 = 3;
pub const ACTIVITY_COOLDOWN: u32 = 4;
pub const ACTIVITY_STOPPED: u32 = 5;
pub const ACTIVITY_KILLED: u32 = 6;

// ---- options -----------------------------------------------------------------------
pub const DTRACEOPT_BUFSIZE: usize = 0;
pub const DTRACEOPT_BUFPOLICY: usize = 1;
pub const DTRACEOPT_DYNVARSIZE: usize = 2;
pub const DTRACEOPT_AGGSIZE: usize = 3;
pub const DTRACEOPT_SPECSIZE: usize = 4;
pub const DTRACEOPT_NSPEC: usize = 5;
pub const DTRACEOPT_STRSIZE: usize = 6;
pub const DTRACEOPT_CLEANRATE: usize = 7;
pub const DTRACEOPT_CPU: usize = 8;
pub const DTRACEOPT_BUFRESIZE: usize = 9;
pub const DTRACEOPT_GRABANON: usize = 10;
pub const DTRACEOPT_STACKFRAMES: usize = 13;
pub const DTRACEOPT_USTACKFRAMES: usize = 14;
pub const DTRACEOPT_AGGRATE: usize = 15;
pub const DTRACEOPT_SWITCHRATE: usize = 16;
pub const DTRACEOPT_STATUSRATE: usize = 17;
pub const DTRACEOPT_DESTRUCTIVE: usize = 18;
pub const DTRACEOPT_JSTACKFRAMES: usize = 21;
pub const DTRACEOPT_JSTACKSTRSIZE: usize = 22;
pub const DTRACEOPT_MAX: usize = 32;
pub const DTRACEOPT_UNSET: i64 = -2;

pub const DTRACEOPT_BUFPOLICY_RING: i64 = 0;
pub const DTRACEOPT_BUFPOLICY_FILL: i64 = 1;
pub const DTRACEOPT_BUFPOLICY_SWITCH: i64 = 2;
pub const DTRACEOPT_BUFRESIZE_AUTO: i64 = 0;
pub const DTRACEOPT_BUFRESIZE_MANUAL: i64 = 1;

// ---- actions -------------------------------------------------------------------------
pub const DTRACEACT_NONE: u16 = 0;
pub const DTRACEACT_DIFEXPR: u16 = 1;
pub const DTRACEACT_EXIT: u16 = 2;
pub const DTRACEACT_PRINTF: u16 = 3;
pub const DTRACEACT_PRINTA: u16 = 4;
pub const DTRACEACT_LIBACT: u16 = 5;
pub const DTRACEACT_TRACEMEM: u16 = 6;
pub const DTRACEACT_TRACEMEM_DYNSIZE: u16 = 7;
pub const DTRACEACT_PRINTM: u16 = 8;
pub const DTRACEACT_USTACK: u16 = 0x101;
pub const DTRACEACT_JSTACK: u16 = 0x102;
pub const DTRACEACT_USYM: u16 = 0x103;
pub const DTRACEACT_UMOD: u16 = 0x104;
pub const DTRACEACT_UADDR: u16 = 0x105;
pub const DTRACEACT_STOP: u16 = 0x201;
pub const DTRACEACT_RAISE: u16 = 0x202;
pub const DTRACEACT_SYSTEM: u16 = 0x203;
pub const DTRACEACT_FREOPEN: u16 = 0x204;
pub const DTRACEACT_STACK: u16 = 0x401;
pub const DTRACEACT_SYM: u16 = 0x402;
pub const DTRACEACT_MOD: u16 = 0x403;
pub const DTRACEACT_BREAKPOINT: u16 = 0x501;
pub const DTRACEACT_PANIC: u16 = 0x502;
pub const DTRACEACT_CHILL: u16 = 0x503;
pub const DTRACEACT_SPECULATE: u16 = 0x601;
pub const DTRACEACT_COMMIT: u16 = 0x602;
pub const DTRACEACT_DISCARD: u16 = 0x603;
pub const DTRACEAGG_COUNT: u16 = 0x701;
pub const DTRACEAGG_MIN: u16 = 0x702;
pub const DTRACEAGG_MAX: u16 = 0x703;
pub const DTRACEAGG_AVG: u16 = 0x704;
pub const DTRACEAGG_SUM: u16 = 0x705;
pub const DTRACEAGG_STDDEV: u16 = 0x706;
pub const DTRACEAGG_QUANTIZE: u16 = 0x707;
pub const DTRACEAGG_LQUANTIZE: u16 = 0x708;
pub const DTRACEAGG_LLQUANTIZE: u16 = 0x709;

/// Action class (high byte).
pub const fn act_class(kind: u16) -> u16 {
    kind & 0xff00
}
pub const fn act_is_agg(kind: u16) -> bool {
    act_class(kind) == 0x0700
}
pub const fn act_is_destructive(kind: u16) -> bool {
    matches!(act_class(kind), 0x0200 | 0x0500)
}
pub const fn act_is_speculative(kind: u16) -> bool {
    act_class(kind) == 0x0600
}
pub const fn act_is_printflike(kind: u16) -> bool {
    matches!(
        kind,
        DTRACEACT_PRINTF | DTRACEACT_PRINTA | DTRACEACT_SYSTEM | DTRACEACT_FREOPEN
    )
}

// ---- faults --------------------------------------------------------------------------
pub const DTRACEFLT_UNKNOWN: u64 = 0;
pub const DTRACEFLT_BADADDR: u64 = 1;
pub const DTRACEFLT_BADALIGN: u64 = 2;
pub const DTRACEFLT_ILLOP: u64 = 3;
pub const DTRACEFLT_DIVZERO: u64 = 4;
pub const DTRACEFLT_NOSCRATCH: u64 = 5;
pub const DTRACEFLT_KPRIV: u64 = 6;
pub const DTRACEFLT_UPRIV: u64 = 7;
pub const DTRACEFLT_TUPOFLOW: u64 = 8;
pub const DTRACEFLT_BADSTACK: u64 = 9;

// ---- buffer flags ---------------------------------------------------------------------
pub const DTRACEBUF_RING: u32 = 0x1;
pub const DTRACEBUF_FILL: u32 = 0x2;
pub const DTRACEBUF_NOSWITCH: u32 = 0x4;
pub const DTRACEBUF_WRAPPED: u32 = 0x8;
pub const DTRACEBUF_DROPPED: u32 = 0x10;
pub const DTRACEBUF_ERROR: u32 = 0x20;
pub const DTRACEBUF_FULL: u32 = 0x40;
pub const DTRACEBUF_CONSUMED: u32 = 0x80;
pub const DTRACEBUF_INACTIVE: u32 = 0x100;

// ---- DOF -------------------------------------------------------------------------------
pub const DOF_HDR_SIZE: usize = 64;
pub const DOF_SEC_SIZE: usize = 32;
pub const DOF_SECIDX_NONE: u32 = 0xffff_ffff;
pub const DOF_SECF_LOAD: u32 = 1;
pub const DOF_MODEL_ILP32: u8 = 1;
pub const DOF_MODEL_LP64: u8 = 2;
pub const DOF_ENCODE_LSB: u8 = 1;
pub const DOF_ENCODE_MSB: u8 = 2;
pub const DOF_ENCODE_NATIVE: u8 = if cfg!(target_endian = "little") {
    DOF_ENCODE_LSB
} else {
    DOF_ENCODE_MSB
};
pub const DOF_VERSION_1: u8 = 1;
pub const DOF_VERSION_2: u8 = 2;
pub const DIF_VERSION: u8 = 2;
pub const DIF_DIR_NREGS: u8 = 8;
pub const DIF_DTR_NREGS: u8 = 8;

pub const DOF_SECT_NONE: u32 = 0;
pub const DOF_SECT_COMMENTS: u32 = 1;
pub const DOF_SECT_SOURCE: u32 = 2;
pub const DOF_SECT_ECBDESC: u32 = 3;
pub const DOF_SECT_PROBEDESC: u32 = 4;
pub const DOF_SECT_ACTDESC: u32 = 5;
pub const DOF_SECT_DIFOHDR: u32 = 6;
pub const DOF_SECT_DIF: u32 = 7;
pub const DOF_SECT_STRTAB: u32 = 8;
pub const DOF_SECT_VARTAB: u32 = 9;
pub const DOF_SECT_RELTAB: u32 = 10;
pub const DOF_SECT_TYPTAB: u32 = 11;
pub const DOF_SECT_URELHDR: u32 = 12;
pub const DOF_SECT_KRELHDR: u32 = 13;
pub const DOF_SECT_OPTDESC: u32 = 14;
pub const DOF_SECT_PROVIDER: u32 = 15;
pub const DOF_SECT_PROBES: u32 = 16;
pub const DOF_SECT_PRARGS: u32 = 17;
pub const DOF_SECT_PROFFS: u32 = 18;
pub const DOF_SECT_INTTAB: u32 = 19;
pub const DOF_SECT_UTSNAME: u32 = 20;
pub const DOF_SECT_XLTAB: u32 = 21;
pub const DOF_SECT_XLMEMBERS: u32 = 22;
pub const DOF_SECT_XLIMPORT: u32 = 23;
pub const DOF_SECT_XLEXPORT: u32 = 24;
pub const DOF_SECT_PREXPORT: u32 = 25;
pub const DOF_SECT_PRENOFFS: u32 = 26;

pub const DOF_RELO_NONE: u32 = 0;
pub const DOF_RELO_SETX: u32 = 1;
pub const DOF_RELO_DOFREL: u32 = 2;

/// Section types that belong to the loadable set (must carry `DOF_SECF_LOAD`).
pub const fn dof_sect_is_loadable(t: u32) -> bool {
    matches!(t, 3..=19 | 21..=26)
}

// ---- DIF types ---------------------------------------------------------------------------
pub const DIF_TYPE_CTF: u8 = 0;
pub const DIF_TYPE_STRING: u8 = 1;
pub const DIF_TF_BYREF: u8 = 0x1;
pub const DIF_TF_BYUREF: u8 = 0x2;

// ---- limits (tunables, abi-facts §5.8) ---------------------------------------------------
pub const DOF_MAXSIZE: u64 = 8 * 1024 * 1024;
pub const DIFO_MAXSIZE: usize = 256 * 1024;
pub const ACTIONS_MAX: usize = 16 * 1024;
pub const RETAIN_MAX: usize = 1024;
pub const DEADMAN_INTERVAL_NS: u64 = 1_000_000_000;
pub const DEADMAN_TIMEOUT_NS: u64 = 10_000_000_000;
pub const DEADMAN_USER_NS: u64 = 30_000_000_000;
pub const DEFAULT_DYNVARSIZE: i64 = 1024 * 1024;
pub const DEFAULT_STRSIZE: i64 = 256;
pub const DEFAULT_SPECSIZE: i64 = 32 * 1024;
pub const DEFAULT_NSPEC: i64 = 1;
pub const CLEANRATE_DEFAULT_NS: i64 = 9_900_990;
pub const CLEANRATE_MIN_NS: i64 = 200_000;
pub const CLEANRATE_MAX_NS: i64 = 60_000_000_000;
pub const STATUSRATE_MAX_NS: i64 = 10_000_000_000;
pub const BUFFER_MIN: i64 = 8;
/// `chill()`: at most this many ns per CPU per interval.
pub const CHILL_MAX_NS: u64 = 500_000_000;
pub const CHILL_INTERVAL_NS: u64 = 1_000_000_000;
/// The maximum nesting of probe context on one CPU (ERROR fired from a fault).
pub const MAX_PROBE_NESTING: u32 = 4;
