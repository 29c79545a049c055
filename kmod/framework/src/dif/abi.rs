//! DIF numbering used by the VM: opcodes, variable ids, subroutine ids, type
//! kinds/flags, variable-table codes and fault codes (abi-facts §2.5,
//! §4.1–§4.4), as `u8`/`u16` constants the interpreter can `match` on.
//!
//! Opcode, built-in variable and subroutine numbers are taken from the ABI
//! crate (`rdtrace_ffi::dif`), so there is one source of truth; current
//! FreeBSD (12 and later) numbering. Plain constants: usable anywhere,
//! including probe context.

/// Opcode numbers (bits 31..24 of an instruction).
pub mod op {
    use rdtrace_ffi::dif::Opcode;

    pub const OR: u8 = Opcode::Or as u8;
    pub const XOR: u8 = Opcode::Xor as u8;
    pub const AND: u8 = Opcode::And as u8;
    pub const SLL: u8 = Opcode::Sll as u8;
    pub const SRL: u8 = Opcode::Srl as u8;
    pub const SUB: u8 = Opcode::Sub as u8;
    pub const ADD: u8 = Opcode::Add as u8;
    pub const MUL: u8 = Opcode::Mul as u8;
    pub const SDIV: u8 = Opcode::Sdiv as u8;
    pub const UDIV: u8 = Opcode::Udiv as u8;
    pub const SREM: u8 = Opcode::Srem as u8;
    pub const UREM: u8 = Opcode::Urem as u8;
    pub const NOT: u8 = Opcode::Not as u8;
    pub const MOV: u8 = Opcode::Mov as u8;
    pub const CMP: u8 = Opcode::Cmp as u8;
    pub const TST: u8 = Opcode::Tst as u8;
    pub const BA: u8 = Opcode::Ba as u8;
    pub const BE: u8 = Opcode::Be as u8;
    pub const BNE: u8 = Opcode::Bne as u8;
    pub const BG: u8 = Opcode::Bg as u8;
    pub const BGU: u8 = Opcode::Bgu as u8;
    pub const BGE: u8 = Opcode::Bge as u8;
    pub const BGEU: u8 = Opcode::Bgeu as u8;
    pub const BL: u8 = Opcode::Bl as u8;
    pub const BLU: u8 = Opcode::Blu as u8;
    pub const BLE: u8 = Opcode::Ble as u8;
    pub const BLEU: u8 = Opcode::Bleu as u8;
    pub const LDSB: u8 = Opcode::Ldsb as u8;
    pub const LDSH: u8 = Opcode::Ldsh as u8;
    pub const LDSW: u8 = Opcode::Ldsw as u8;
    pub const LDUB: u8 = Opcode::Ldub as u8;
    pub const LDUH: u8 = Opcode::Lduh as u8;
    pub const LDUW: u8 = Opcode::Lduw as u8;
    pub const LDX: u8 = Opcode::Ldx as u8;
    pub const RET: u8 = Opcode::Ret as u8;
    pub const NOP: u8 = Opcode::Nop as u8;
    pub const SETX: u8 = Opcode::Setx as u8;
    pub const SETS: u8 = Opcode::Sets as u8;
    pub const SCMP: u8 = Opcode::Scmp as u8;
    pub const LDGA: u8 = Opcode::Ldga as u8;
    pub const LDGS: u8 = Opcode::Ldgs as u8;
    pub const STGS: u8 = Opcode::Stgs as u8;
    pub const LDTA: u8 = Opcode::Ldta as u8;
    pub const LDTS: u8 = Opcode::Ldts as u8;
    pub const STTS: u8 = Opcode::Stts as u8;
    pub const SRA: u8 = Opcode::Sra as u8;
    pub const CALL: u8 = Opcode::Call as u8;
    pub const PUSHTR: u8 = Opcode::Pushtr as u8;
    pub const PUSHTV: u8 = Opcode::Pushtv as u8;
    pub const POPTS: u8 = Opcode::Popts as u8;
    pub const FLUSHTS: u8 = Opcode::Flushts as u8;
    pub const LDGAA: u8 = Opcode::Ldgaa as u8;
    pub const LDTAA: u8 = Opcode::Ldtaa as u8;
    pub const STGAA: u8 = Opcode::Stgaa as u8;
    pub const STTAA: u8 = Opcode::Sttaa as u8;
    pub const LDLS: u8 = Opcode::Ldls as u8;
    pub const STLS: u8 = Opcode::Stls as u8;
    pub const ALLOCS: u8 = Opcode::Allocs as u8;
    pub const COPYS: u8 = Opcode::Copys as u8;
    pub const STB: u8 = Opcode::Stb as u8;
    pub const STH: u8 = Opcode::Sth as u8;
    pub const STW: u8 = Opcode::Stw as u8;
    pub const STX: u8 = Opcode::Stx as u8;
    pub const ULDSB: u8 = Opcode::Uldsb as u8;
    pub const ULDSH: u8 = Opcode::Uldsh as u8;
    pub const ULDSW: u8 = Opcode::Uldsw as u8;
    pub const ULDUB: u8 = Opcode::Uldub as u8;
    pub const ULDUH: u8 = Opcode::Ulduh as u8;
    pub const ULDUW: u8 = Opcode::Ulduw as u8;
    pub const ULDX: u8 = Opcode::Uldx as u8;
    pub const RLDSB: u8 = Opcode::Rldsb as u8;
    pub const RLDSH: u8 = Opcode::Rldsh as u8;
    pub const RLDSW: u8 = Opcode::Rldsw as u8;
    pub const RLDUB: u8 = Opcode::Rldub as u8;
    pub const RLDUH: u8 = Opcode::Rlduh as u8;
    pub const RLDUW: u8 = Opcode::Rlduw as u8;
    pub const RLDX: u8 = Opcode::Rldx as u8;
    pub const XLATE: u8 = Opcode::Xlate as u8;
    pub const XLARG: u8 = Opcode::Xlarg as u8;
}

/// Built-in variable ids (abi-facts §4.3).
pub mod var {
    use rdtrace_ffi::dif::BuiltinVar;

    pub const ARGS: u16 = BuiltinVar::Args as u16;
    pub const REGS: u16 = BuiltinVar::Regs as u16;
    pub const UREGS: u16 = BuiltinVar::Uregs as u16;
    /// Highest array id.
    pub const ARRAY_MAX: u16 = 0x0ff;
    /// Lowest scalar/associative id.
    pub const SCALAR_MIN: u16 = 0x100;
    pub const CURTHREAD: u16 = BuiltinVar::Curthread as u16;
    pub const TIMESTAMP: u16 = BuiltinVar::Timestamp as u16;
    pub const VTIMESTAMP: u16 = BuiltinVar::Vtimestamp as u16;
    pub const IPL: u16 = BuiltinVar::Ipl as u16;
    pub const EPID: u16 = BuiltinVar::Epid as u16;
    pub const ID: u16 = BuiltinVar::Id as u16;
    pub const ARG0: u16 = BuiltinVar::Arg0 as u16;
    pub const ARG9: u16 = BuiltinVar::Arg9 as u16;
    pub const STACKDEPTH: u16 = BuiltinVar::Stackdepth as u16;
    pub const CALLER: u16 = BuiltinVar::Caller as u16;
    pub const PROBEPROV: u16 = BuiltinVar::Probeprov as u16;
    pub const PROBEMOD: u16 = BuiltinVar::Probemod as u16;
    pub const PROBEFUNC: u16 = BuiltinVar::Probefunc as u16;
    pub const PROBENAME: u16 = BuiltinVar::Probename as u16;
    pub const PID: u16 = BuiltinVar::Pid as u16;
    pub const TID: u16 = BuiltinVar::Tid as u16;
    pub const EXECNAME: u16 = BuiltinVar::Execname as u16;
    pub const ZONENAME: u16 = BuiltinVar::Zonename as u16;
    pub const WALLTIMESTAMP: u16 = BuiltinVar::Walltimestamp as u16;
    pub const USTACKDEPTH: u16 = BuiltinVar::Ustackdepth as u16;
    pub const UCALLER: u16 = BuiltinVar::Ucaller as u16;
    pub const PPID: u16 = BuiltinVar::Ppid as u16;
    pub const UID: u16 = BuiltinVar::Uid as u16;
    pub const GID: u16 = BuiltinVar::Gid as u16;
    pub const ERRNO: u16 = BuiltinVar::Errno as u16;
    pub const EXECARGS: u16 = BuiltinVar::Execargs as u16;
    pub const JID: u16 = BuiltinVar::Jid as u16;
    pub const JAILNAME: u16 = BuiltinVar::Jailname as u16;
    pub const CPU: u16 = BuiltinVar::Cpu as u16;
    /// First user-defined variable id (`DIF_VAR_OTHER_UBASE`).
    pub const UBASE: u16 = 0x500;
}

/// Subroutine ids, current FreeBSD numbering (abi-facts §4.4).
pub mod subr {
    use rdtrace_ffi::dif::Subr;

    pub const RAND: u16 = Subr::Rand as u16;
    pub const MUTEX_OWNED: u16 = Subr::MutexOwned as u16;
    pub const MUTEX_OWNER: u16 = Subr::MutexOwner as u16;
    pub const MUTEX_TYPE_ADAPTIVE: u16 = Subr::MutexTypeAdaptive as u16;
    pub const MUTEX_TYPE_SPIN: u16 = Subr::MutexTypeSpin as u16;
    pub const RW_READ_HELD: u16 = Subr::RwReadHeld as u16;
    pub const RW_WRITE_HELD: u16 = Subr::RwWriteHeld as u16;
    pub const RW_ISWRITER: u16 = Subr::RwIswriter as u16;
    pub const COPYIN: u16 = Subr::Copyin as u16;
    pub const COPYINSTR: u16 = Subr::Copyinstr as u16;
    pub const SPECULATION: u16 = Subr::Speculation as u16;
    pub const PROGENYOF: u16 = Subr::Progenyof as u16;
    pub const STRLEN: u16 = Subr::Strlen as u16;
    pub const COPYOUT: u16 = Subr::Copyout as u16;
    pub const COPYOUTSTR: u16 = Subr::Copyoutstr as u16;
    pub const ALLOCA: u16 = Subr::Alloca as u16;
    pub const BCOPY: u16 = Subr::Bcopy as u16;
    pub const COPYINTO: u16 = Subr::Copyinto as u16;
    pub const MSGDSIZE: u16 = Subr::Msgdsize as u16;
    pub const MSGSIZE: u16 = Subr::Msgsize as u16;
    pub const GETMAJOR: u16 = Subr::Getmajor as u16;
    pub const GETMINOR: u16 = Subr::Getminor as u16;
    pub const DDI_PATHNAME: u16 = Subr::DdiPathname as u16;
    pub const STRJOIN: u16 = Subr::Strjoin as u16;
    pub const LLTOSTR: u16 = Subr::Lltostr as u16;
    pub const BASENAME: u16 = Subr::Basename as u16;
    pub const DIRNAME: u16 = Subr::Dirname as u16;
    pub const CLEANPATH: u16 = Subr::Cleanpath as u16;
    pub const STRCHR: u16 = Subr::Strchr as u16;
    pub const STRRCHR: u16 = Subr::Strrchr as u16;
    pub const STRSTR: u16 = Subr::Strstr as u16;
    pub const STRTOK: u16 = Subr::Strtok as u16;
    pub const SUBSTR: u16 = Subr::Substr as u16;
    pub const INDEX: u16 = Subr::Index as u16;
    pub const RINDEX: u16 = Subr::Rindex as u16;
    pub const HTONS: u16 = Subr::Htons as u16;
    pub const HTONL: u16 = Subr::Htonl as u16;
    pub const HTONLL: u16 = Subr::Htonll as u16;
    pub const NTOHS: u16 = Subr::Ntohs as u16;
    pub const NTOHL: u16 = Subr::Ntohl as u16;
    pub const NTOHLL: u16 = Subr::Ntohll as u16;
    pub const INET_NTOP: u16 = Subr::InetNtop as u16;
    pub const INET_NTOA: u16 = Subr::InetNtoa as u16;
    pub const INET_NTOA6: u16 = Subr::InetNtoa6 as u16;
    pub const TOUPPER: u16 = Subr::Toupper as u16;
    pub const TOLOWER: u16 = Subr::Tolower as u16;
    pub const MEMREF: u16 = Subr::Memref as u16;
    pub const SX_SHARED_HELD: u16 = Subr::SxSharedHeld as u16;
    pub const SX_EXCLUSIVE_HELD: u16 = Subr::SxExclusiveHeld as u16;
    pub const SX_ISEXCLUSIVE: u16 = Subr::SxIsexclusive as u16;
    pub const MEMSTR: u16 = Subr::Memstr as u16;
    pub const GETF: u16 = Subr::Getf as u16;
    pub const JSON: u16 = Subr::Json as u16;
    pub const STRTOLL: u16 = Subr::Strtoll as u16;
    /// Highest valid subroutine id.
    pub const MAX: u16 = 53;
}

/// `DIF_TYPE_*`: the kind of a DIF type.
pub mod type_kind {
    /// A C (CTF) type.
    pub const CTF: u8 = 0;
    /// A D string.
    pub const STRING: u8 = 1;
}

/// `DIF_TF_*` type flags.
pub mod type_flags {
    /// Passed by reference (the value is an address).
    pub const BYREF: u8 = 1;
    /// By reference to user memory.
    pub const BYUREF: u8 = 2;
}

/// `DIFV_KIND_*`, `DIFV_SCOPE_*`, `DIFV_F_*`.
pub mod var_desc {
    pub const KIND_ARRAY: u8 = 0;
    pub const KIND_SCALAR: u8 = 1;
    pub const SCOPE_GLOBAL: u8 = 0;
    pub const SCOPE_THREAD: u8 = 1;
    pub const SCOPE_LOCAL: u8 = 2;
    pub const F_REF: u16 = 1;
    pub const F_MOD: u16 = 2;
}

/// `DTRACEFLT_*` fault codes (abi-facts §2.5): the ABI crate's type.
pub type FaultCode = rdtrace_ffi::fault::Fault;

/// Address families as FreeBSD numbers them (`inet_ntop`).
pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 28;
