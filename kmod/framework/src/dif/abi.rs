//! DIF numbering used by the VM: opcodes, variable ids, subroutine ids, type
//! and fault codes (abi-facts §2.5, §4.1–§4.4), plus the decoded variable
//! description the validator works from.
//!
//! The values are the ABI of current FreeBSD (12 and later). Not probe-context
//! specific: plain constants.

/// Opcode numbers (bits 31..24 of an instruction).
pub mod op {
    pub const OR: u8 = 1;
    pub const XOR: u8 = 2;
    pub const AND: u8 = 3;
    pub const SLL: u8 = 4;
    pub const SRL: u8 = 5;
    pub const SUB: u8 = 6;
    pub const ADD: u8 = 7;
    pub const MUL: u8 = 8;
    pub const SDIV: u8 = 9;
    pub const UDIV: u8 = 10;
    pub const SREM: u8 = 11;
    pub const UREM: u8 = 12;
    pub const NOT: u8 = 13;
    pub const MOV: u8 = 14;
    pub const CMP: u8 = 15;
    pub const TST: u8 = 16;
    pub const BA: u8 = 17;
    pub const BE: u8 = 18;
    pub const BNE: u8 = 19;
    pub const BG: u8 = 20;
    pub const BGU: u8 = 21;
    pub const BGE: u8 = 22;
    pub const BGEU: u8 = 23;
    pub const BL: u8 = 24;
    pub const BLU: u8 = 25;
    pub const BLE: u8 = 26;
    pub const BLEU: u8 = 27;
    pub const LDSB: u8 = 28;
    pub const LDSH: u8 = 29;
    pub const LDSW: u8 = 30;
    pub const LDUB: u8 = 31;
    pub const LDUH: u8 = 32;
    pub const LDUW: u8 = 33;
    pub const LDX: u8 = 34;
    pub const RET: u8 = 35;
    pub const NOP: u8 = 36;
    pub const SETX: u8 = 37;
    pub const SETS: u8 = 38;
    pub const SCMP: u8 = 39;
    pub const LDGA: u8 = 40;
    pub const LDGS: u8 = 41;
    pub const STGS: u8 = 42;
    pub const LDTA: u8 = 43;
    pub const LDTS: u8 = 44;
    pub const STTS: u8 = 45;
    pub const SRA: u8 = 46;
    pub const CALL: u8 = 47;
    pub const PUSHTR: u8 = 48;
    pub const PUSHTV: u8 = 49;
    pub const POPTS: u8 = 50;
    pub const FLUSHTS: u8 = 51;
    pub const LDGAA: u8 = 52;
    pub const LDTAA: u8 = 53;
    pub const STGAA: u8 = 54;
    pub const STTAA: u8 = 55;
    pub const LDLS: u8 = 56;
    pub const STLS: u8 = 57;
    pub const ALLOCS: u8 = 58;
    pub const COPYS: u8 = 59;
    pub const STB: u8 = 60;
    pub const STH: u8 = 61;
    pub const STW: u8 = 62;
    pub const STX: u8 = 63;
    pub const ULDSB: u8 = 64;
    pub const ULDSH: u8 = 65;
    pub const ULDSW: u8 = 66;
    pub const ULDUB: u8 = 67;
    pub const ULDUH: u8 = 68;
    pub const ULDUW: u8 = 69;
    pub const ULDX: u8 = 70;
    pub const RLDSB: u8 = 71;
    pub const RLDSH: u8 = 72;
    pub const RLDSW: u8 = 73;
    pub const RLDUB: u8 = 74;
    pub const RLDUH: u8 = 75;
    pub const RLDUW: u8 = 76;
    pub const RLDX: u8 = 77;
    pub const XLATE: u8 = 78;
    pub const XLARG: u8 = 79;
}

/// Built-in variable ids (abi-facts §4.3).
pub mod var {
    pub const ARGS: u16 = 0x000;
    pub const REGS: u16 = 0x001;
    pub const UREGS: u16 = 0x002;
    /// Highest array id.
    pub const ARRAY_MAX: u16 = 0x0ff;
    /// Lowest scalar/associative id.
    pub const SCALAR_MIN: u16 = 0x100;
    pub const CURTHREAD: u16 = 0x100;
    pub const TIMESTAMP: u16 = 0x101;
    pub const VTIMESTAMP: u16 = 0x102;
    pub const IPL: u16 = 0x103;
    pub const EPID: u16 = 0x104;
    pub const ID: u16 = 0x105;
    pub const ARG0: u16 = 0x106;
    pub const ARG9: u16 = 0x10f;
    pub const STACKDEPTH: u16 = 0x110;
    pub const CALLER: u16 = 0x111;
    pub const PROBEPROV: u16 = 0x112;
    pub const PROBEMOD: u16 = 0x113;
    pub const PROBEFUNC: u16 = 0x114;
    pub const PROBENAME: u16 = 0x115;
    pub const PID: u16 = 0x116;
    pub const TID: u16 = 0x117;
    pub const EXECNAME: u16 = 0x118;
    pub const ZONENAME: u16 = 0x119;
    pub const WALLTIMESTAMP: u16 = 0x11a;
    pub const USTACKDEPTH: u16 = 0x11b;
    pub const UCALLER: u16 = 0x11c;
    pub const PPID: u16 = 0x11d;
    pub const UID: u16 = 0x11e;
    pub const GID: u16 = 0x11f;
    pub const ERRNO: u16 = 0x120;
    pub const EXECARGS: u16 = 0x121;
    pub const JID: u16 = 0x122;
    pub const JAILNAME: u16 = 0x123;
    pub const CPU: u16 = 0x200;
    /// First user-defined variable id (`DIF_VAR_OTHER_UBASE`).
    pub const UBASE: u16 = 0x500;
}

/// Subroutine ids, current FreeBSD numbering (abi-facts §4.4).
pub mod subr {
    pub const RAND: u16 = 0;
    pub const MUTEX_OWNED: u16 = 1;
    pub const MUTEX_OWNER: u16 = 2;
    pub const MUTEX_TYPE_ADAPTIVE: u16 = 3;
    pub const MUTEX_TYPE_SPIN: u16 = 4;
    pub const RW_READ_HELD: u16 = 5;
    pub const RW_WRITE_HELD: u16 = 6;
    pub const RW_ISWRITER: u16 = 7;
    pub const COPYIN: u16 = 8;
    pub const COPYINSTR: u16 = 9;
    pub const SPECULATION: u16 = 10;
    pub const PROGENYOF: u16 = 11;
    pub const STRLEN: u16 = 12;
    pub const COPYOUT: u16 = 13;
    pub const COPYOUTSTR: u16 = 14;
    pub const ALLOCA: u16 = 15;
    pub const BCOPY: u16 = 16;
    pub const COPYINTO: u16 = 17;
    pub const MSGDSIZE: u16 = 18;
    pub const MSGSIZE: u16 = 19;
    pub const GETMAJOR: u16 = 20;
    pub const GETMINOR: u16 = 21;
    pub const DDI_PATHNAME: u16 = 22;
    pub const STRJOIN: u16 = 23;
    pub const LLTOSTR: u16 = 24;
    pub const BASENAME: u16 = 25;
    pub const DIRNAME: u16 = 26;
    pub const CLEANPATH: u16 = 27;
    pub const STRCHR: u16 = 28;
    pub const STRRCHR: u16 = 29;
    pub const STRSTR: u16 = 30;
    pub const STRTOK: u16 = 31;
    pub const SUBSTR: u16 = 32;
    pub const INDEX: u16 = 33;
    pub const RINDEX: u16 = 34;
    pub const HTONS: u16 = 35;
    pub const HTONL: u16 = 36;
    pub const HTONLL: u16 = 37;
    pub const NTOHS: u16 = 38;
    pub const NTOHL: u16 = 39;
    pub const NTOHLL: u16 = 40;
    pub const INET_NTOP: u16 = 41;
    pub const INET_NTOA: u16 = 42;
    pub const INET_NTOA6: u16 = 43;
    pub const TOUPPER: u16 = 44;
    pub const TOLOWER: u16 = 45;
    pub const MEMREF: u16 = 46;
    pub const SX_SHARED_HELD: u16 = 47;
    pub const SX_EXCLUSIVE_HELD: u16 = 48;
    pub const SX_ISEXCLUSIVE: u16 = 49;
    pub const MEMSTR: u16 = 50;
    pub const GETF: u16 = 51;
    pub const JSON: u16 = 52;
    pub const STRTOLL: u16 = 53;
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

/// `DTRACEFLT_*` fault codes (abi-facts §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultCode {
    Unknown = 0,
    BadAddr = 1,
    BadAlign = 2,
    IllOp = 3,
    DivZero = 4,
    NoScratch = 5,
    KPriv = 6,
    UPriv = 7,
    TupOFlow = 8,
    BadStack = 9,
}

/// Address families as FreeBSD numbers them (`inet_ntop`).
pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 28;
