//! Basic DTrace typedefs, name-length limits and sentinel ids shared by the
//! descriptor structs (`dtrace_id_t`, `DTRACE_PROVNAMELEN`, `DTRACE_IDNONE`...),
//! plus the CTF data-model codes reported by the CONF ioctl.
//!
//! Probe context: yes (constants only).

/// A probe id (`dtrace_id_t`); probe ids start at 1.
pub type DtraceId = u32;
/// An enabled-probe id (`dtrace_epid_t`), per consumer, starting at 1.
pub type EpId = u32;
/// An aggregation id (`dtrace_aggid_t`), per consumer, starting at 1.
pub type AggId = u32;
/// A predicate cache id (`dtrace_cacheid_t`).
pub type CacheId = u32;
/// An aggregation variable id (`dtrace_aggvarid_t`), a user-level value.
pub type AggVarId = i64;
/// A CPU number (`processorid_t`).
pub type ProcessorId = i32;

/// "No probe" (`DTRACE_IDNONE`).
pub const DTRACE_IDNONE: DtraceId = 0;
/// "No enabled probe" (`DTRACE_EPIDNONE`); also the padding word in buffers.
pub const DTRACE_EPIDNONE: EpId = 0;
/// "No aggregation" (`DTRACE_AGGIDNONE`); also the filler word in
/// aggregation buffers.
pub const DTRACE_AGGIDNONE: AggId = 0;
/// "Every CPU" (`DTRACE_CPUALL`), e.g. the default of the `cpu` option.
pub const DTRACE_CPUALL: ProcessorId = -1;
/// "No argument mapping" (`DTRACE_ARGNONE`), written to `dtargd_ndx`.
pub const DTRACE_ARGNONE: i32 = -1;

/// Length of a provider name field, NUL included (`DTRACE_PROVNAMELEN`).
pub const DTRACE_PROVNAMELEN: usize = 64;
/// Length of a module name field (`DTRACE_MODNAMELEN`).
pub const DTRACE_MODNAMELEN: usize = 64;
/// Length of a function name field (`DTRACE_FUNCNAMELEN`).
pub const DTRACE_FUNCNAMELEN: usize = 192;
/// Length of a probe name field (`DTRACE_NAMELEN`).
pub const DTRACE_NAMELEN: usize = 64;
/// Room for `provider:module:function:name` (`DTRACE_FULLNAMELEN`).
pub const DTRACE_FULLNAMELEN: usize =
    DTRACE_PROVNAMELEN + DTRACE_MODNAMELEN + DTRACE_FUNCNAMELEN + DTRACE_NAMELEN + 4;
/// Length of an argument type name field (`DTRACE_ARGTYPELEN`).
pub const DTRACE_ARGTYPELEN: usize = 128;

/// CTF data model code for ILP32 (`DTRACE_CTFMODEL_ILP32`).
pub const DTRACE_CTFMODEL_ILP32: u32 = 1;
/// CTF data model code for LP64 (`DTRACE_CTFMODEL_LP64`).
pub const DTRACE_CTFMODEL_LP64: u32 = 2;
/// The model of every supported target (`DTRACE_CTFMODEL_NATIVE`).
pub const DTRACE_CTFMODEL_NATIVE: u32 = DTRACE_CTFMODEL_LP64;

static_assertions::const_assert_eq!(DTRACE_FULLNAMELEN, 388);
