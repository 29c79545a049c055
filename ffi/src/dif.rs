//! DIF, the DTrace Intermediate Format: the instruction encoding, the opcode
//! table, the built-in variable and subroutine id tables, and the two small
//! ABI structs that describe DIF types (`dtrace_diftype_t`) and variables
//! (`dtrace_difv_t`). Numbering is current FreeBSD (12 and later).
//!
//! Contract: [`Instruction::encode`] and [`Instruction::decode`] are exact
//! inverses for every well-formed word; `decode` rejects unknown opcodes and
//! set reserved bits. Semantic checks (register bounds, forward branches,
//! table bounds) belong to the DIF validator, not here.
//!
//! Probe context: yes — everything is `const`/allocation-free and panic-free.

// The C type names (`dtrace_diftype_t`, ...) are kept as aliases so the ABI
// names stay searchable.
#![allow(non_camel_case_types)]

use crate::pod::abi_struct;
use crate::UnknownValue;

/// DIF instruction-set version 1 (historic).
pub const DIF_VERSION_1: u8 = 1;
/// DIF instruction-set version 2, the only one the kernel accepts.
pub const DIF_VERSION_2: u8 = 2;
/// The DIF version this crate speaks (`DIF_VERSION`).
pub const DIF_VERSION: u8 = DIF_VERSION_2;

/// Number of integer registers `%r0`..`%r7` (`DIF_DIR_NREGS`).
pub const DIF_DIR_NREGS: u8 = 8;
/// Number of tuple-stack slots (`DIF_DTR_NREGS`).
pub const DIF_DTR_NREGS: u8 = 8;
/// `%r0` always reads as zero and may not be written (`DIF_REG_R0`).
pub const DIF_REG_R0: u8 = 0;

/// Largest value a register field can encode (`DIF_REGISTER_MAX`).
pub const DIF_REGISTER_MAX: u32 = 0xff;
/// Largest integer-table index (`DIF_INTOFF_MAX`).
pub const DIF_INTOFF_MAX: u32 = 0xffff;
/// Largest string-table offset an instruction can name (`DIF_STROFF_MAX`).
pub const DIF_STROFF_MAX: u32 = 0xffff;
/// Largest variable id (`DIF_VARIABLE_MAX`).
pub const DIF_VARIABLE_MAX: u32 = 0xffff;
/// Largest subroutine id an instruction can encode (`DIF_SUBROUTINE_MAX`).
pub const DIF_SUBROUTINE_MAX: u32 = 0xffff;
/// Largest branch target (24-bit absolute instruction index).
pub const DIF_LABEL_MAX: u32 = 0x00ff_ffff;

/// A DIF register number. Only 0..[`DIF_DIR_NREGS`] are valid at run time,
/// but the encoding carries a full byte, so the validator checks the bound.
pub type Reg = u8;

// ---------------------------------------------------------------------------
// Raw field access (`DIF_INSTR_*` accessors), for the interpreter's hot loop.
// ---------------------------------------------------------------------------

/// Opcode byte, bits 31..24 (`DIF_INSTR_OP`).
#[inline]
pub const fn instr_op(word: u32) -> u8 {
    (word >> 24) as u8
}
/// First source register, bits 23..16 (`DIF_INSTR_R1`).
#[inline]
pub const fn instr_r1(word: u32) -> u8 {
    (word >> 16) as u8
}
/// Second source register, bits 15..8 (`DIF_INSTR_R2`).
#[inline]
pub const fn instr_r2(word: u32) -> u8 {
    (word >> 8) as u8
}
/// Destination (or store-source) register, bits 7..0 (`DIF_INSTR_RD`/`RS`).
#[inline]
pub const fn instr_rd(word: u32) -> u8 {
    word as u8
}
/// Branch target, bits 23..0 (`DIF_INSTR_LABEL`).
#[inline]
pub const fn instr_label(word: u32) -> u32 {
    word & DIF_LABEL_MAX
}
/// The 16-bit immediate in bits 23..8: integer-table index, string-table
/// offset, variable id, subroutine id or translator reference
/// (`DIF_INSTR_INTEGER`/`STRING`/`VAR`/`SUBR`/`XLREF`).
#[inline]
pub const fn instr_imm16(word: u32) -> u16 {
    (word >> 8) as u16
}
/// Type byte of PUSHTR/PUSHTV, bits 23..16 (`DIF_INSTR_TYPE`).
#[inline]
pub const fn instr_type(word: u32) -> u8 {
    (word >> 16) as u8
}
/// Builds a three-register word (`DIF_INSTR_FMT`).
#[inline]
pub const fn instr_fmt(op: u8, r1: u8, r2: u8, rd: u8) -> u32 {
    ((op as u32) << 24) | ((r1 as u32) << 16) | ((r2 as u32) << 8) | rd as u32
}
/// Builds an immediate-form word: opcode, 16-bit immediate, low register.
#[inline]
pub const fn instr_imm(op: u8, imm: u16, rd: u8) -> u32 {
    ((op as u32) << 24) | ((imm as u32) << 8) | rd as u32
}

// ---------------------------------------------------------------------------
// Opcodes
// ---------------------------------------------------------------------------

/// How an opcode uses the 24 operand bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperandForm {
    /// `r1, r2 -> rd` (ALU ops).
    Reg3,
    /// `r1 -> rd`, r2 reserved (NOT, MOV).
    Reg2,
    /// `r1, r2` compared, rd reserved (CMP, SCMP).
    Compare,
    /// `r1` tested, r2 and rd reserved (TST).
    Test,
    /// 24-bit absolute branch target.
    Branch,
    /// `[r1] -> rd`, r2 reserved (all loads).
    Load,
    /// `r1 -> [rd]`, r2 reserved (STB..STX).
    Store,
    /// `rd` returned, r1 and r2 reserved (RET).
    Ret,
    /// No operands; all 24 bits reserved (NOP, POPTS, FLUSHTS).
    NoOperands,
    /// 16-bit integer-table index `-> rd` (SETX).
    SetInt,
    /// 16-bit string-table offset `-> rd` (SETS).
    SetStr,
    /// 8-bit array variable id in the r1 byte, index register r2, `-> rd`
    /// (LDGA, LDTA).
    LoadArray,
    /// 16-bit variable id `-> rd` (LDGS, LDTS, LDLS, LDGAA, LDTAA).
    LoadVar,
    /// `rs -> ` 16-bit variable id (STGS, STTS, STLS, STGAA, STTAA).
    StoreVar,
    /// 16-bit subroutine id, result `-> rd` (CALL).
    Call,
    /// Type byte in r1, size register r2, value/reference register rs
    /// (PUSHTR, PUSHTV).
    PushTuple,
    /// Size in r1 `-> rd` (ALLOCS).
    Allocs,
    /// Source r1, size r2, destination rd (COPYS).
    Copys,
    /// 16-bit translator reference `-> rd` (XLATE, XLARG; user level only).
    Xlate,
}

macro_rules! opcodes {
    ($( $variant:ident = $num:literal, $cname:literal, $mnem:literal, $form:ident; )+) => {
        /// A DIF opcode (`DIF_OP_*`), 1..=79.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Opcode {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), "), mnemonic `", $mnem, "`.")]
                $variant = $num,
            )+
        }

        impl Opcode {
            /// Every opcode in numeric order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$variant),+];

            /// The opcode for a raw byte, or `None` if it names no opcode.
            pub const fn from_u8(raw: u8) -> Option<Opcode> {
                match raw {
                    $($num => Some(Opcode::$variant),)+
                    _ => None,
                }
            }

            /// The lower-case assembler mnemonic (as in `dtrace -S`).
            pub const fn mnemonic(self) -> &'static str {
                match self { $(Opcode::$variant => $mnem,)+ }
            }

            /// The C macro name, e.g. `DIF_OP_ADD`.
            pub const fn c_name(self) -> &'static str {
                match self { $(Opcode::$variant => $cname,)+ }
            }

            /// How the opcode uses its operand bits.
            pub const fn form(self) -> OperandForm {
                match self { $(Opcode::$variant => OperandForm::$form,)+ }
            }

            /// Looks an opcode up by its mnemonic.
            pub fn from_mnemonic(name: &str) -> Option<Opcode> {
                Self::ALL.iter().copied().find(|op| op.mnemonic() == name)
            }
        }
    };
}

opcodes! {
    Or = 1, "DIF_OP_OR", "or", Reg3;
    Xor = 2, "DIF_OP_XOR", "xor", Reg3;
    And = 3, "DIF_OP_AND", "and", Reg3;
    Sll = 4, "DIF_OP_SLL", "sll", Reg3;
    Srl = 5, "DIF_OP_SRL", "srl", Reg3;
    Sub = 6, "DIF_OP_SUB", "sub", Reg3;
    Add = 7, "DIF_OP_ADD", "add", Reg3;
    Mul = 8, "DIF_OP_MUL", "mul", Reg3;
    Sdiv = 9, "DIF_OP_SDIV", "sdiv", Reg3;
    Udiv = 10, "DIF_OP_UDIV", "udiv", Reg3;
    Srem = 11, "DIF_OP_SREM", "srem", Reg3;
    Urem = 12, "DIF_OP_UREM", "urem", Reg3;
    Not = 13, "DIF_OP_NOT", "not", Reg2;
    Mov = 14, "DIF_OP_MOV", "mov", Reg2;
    Cmp = 15, "DIF_OP_CMP", "cmp", Compare;
    Tst = 16, "DIF_OP_TST", "tst", Test;
    Ba = 17, "DIF_OP_BA", "ba", Branch;
    Be = 18, "DIF_OP_BE", "be", Branch;
    Bne = 19, "DIF_OP_BNE", "bne", Branch;
    Bg = 20, "DIF_OP_BG", "bg", Branch;
    Bgu = 21, "DIF_OP_BGU", "bgu", Branch;
    Bge = 22, "DIF_OP_BGE", "bge", Branch;
    Bgeu = 23, "DIF_OP_BGEU", "bgeu", Branch;
    Bl = 24, "DIF_OP_BL", "bl", Branch;
    Blu = 25, "DIF_OP_BLU", "blu", Branch;
    Ble = 26, "DIF_OP_BLE", "ble", Branch;
    Bleu = 27, "DIF_OP_BLEU", "bleu", Branch;
    Ldsb = 28, "DIF_OP_LDSB", "ldsb", Load;
    Ldsh = 29, "DIF_OP_LDSH", "ldsh", Load;
    Ldsw = 30, "DIF_OP_LDSW", "ldsw", Load;
    Ldub = 31, "DIF_OP_LDUB", "ldub", Load;
    Lduh = 32, "DIF_OP_LDUH", "lduh", Load;
    Lduw = 33, "DIF_OP_LDUW", "lduw", Load;
    Ldx = 34, "DIF_OP_LDX", "ldx", Load;
    Ret = 35, "DIF_OP_RET", "ret", Ret;
    Nop = 36, "DIF_OP_NOP", "nop", NoOperands;
    Setx = 37, "DIF_OP_SETX", "setx", SetInt;
    Sets = 38, "DIF_OP_SETS", "sets", SetStr;
    Scmp = 39, "DIF_OP_SCMP", "scmp", Compare;
    Ldga = 40, "DIF_OP_LDGA", "ldga", LoadArray;
    Ldgs = 41, "DIF_OP_LDGS", "ldgs", LoadVar;
    Stgs = 42, "DIF_OP_STGS", "stgs", StoreVar;
    Ldta = 43, "DIF_OP_LDTA", "ldta", LoadArray;
    Ldts = 44, "DIF_OP_LDTS", "ldts", LoadVar;
    Stts = 45, "DIF_OP_STTS", "stts", StoreVar;
    Sra = 46, "DIF_OP_SRA", "sra", Reg3;
    Call = 47, "DIF_OP_CALL", "call", Call;
    Pushtr = 48, "DIF_OP_PUSHTR", "pushtr", PushTuple;
    Pushtv = 49, "DIF_OP_PUSHTV", "pushtv", PushTuple;
    Popts = 50, "DIF_OP_POPTS", "popts", NoOperands;
    Flushts = 51, "DIF_OP_FLUSHTS", "flushts", NoOperands;
    Ldgaa = 52, "DIF_OP_LDGAA", "ldgaa", LoadVar;
    Ldtaa = 53, "DIF_OP_LDTAA", "ldtaa", LoadVar;
    Stgaa = 54, "DIF_OP_STGAA", "stgaa", StoreVar;
    Sttaa = 55, "DIF_OP_STTAA", "sttaa", StoreVar;
    Ldls = 56, "DIF_OP_LDLS", "ldls", LoadVar;
    Stls = 57, "DIF_OP_STLS", "stls", StoreVar;
    Allocs = 58, "DIF_OP_ALLOCS", "allocs", Allocs;
    Copys = 59, "DIF_OP_COPYS", "copys", Copys;
    Stb = 60, "DIF_OP_STB", "stb", Store;
    Sth = 61, "DIF_OP_STH", "sth", Store;
    Stw = 62, "DIF_OP_STW", "stw", Store;
    Stx = 63, "DIF_OP_STX", "stx", Store;
    Uldsb = 64, "DIF_OP_ULDSB", "uldsb", Load;
    Uldsh = 65, "DIF_OP_ULDSH", "uldsh", Load;
    Uldsw = 66, "DIF_OP_ULDSW", "uldsw", Load;
    Uldub = 67, "DIF_OP_ULDUB", "uldub", Load;
    Ulduh = 68, "DIF_OP_ULDUH", "ulduh", Load;
    Ulduw = 69, "DIF_OP_ULDUW", "ulduw", Load;
    Uldx = 70, "DIF_OP_ULDX", "uldx", Load;
    Rldsb = 71, "DIF_OP_RLDSB", "rldsb", Load;
    Rldsh = 72, "DIF_OP_RLDSH", "rldsh", Load;
    Rldsw = 73, "DIF_OP_RLDSW", "rldsw", Load;
    Rldub = 74, "DIF_OP_RLDUB", "rldub", Load;
    Rlduh = 75, "DIF_OP_RLDUH", "rlduh", Load;
    Rlduw = 76, "DIF_OP_RLDUW", "rlduw", Load;
    Rldx = 77, "DIF_OP_RLDX", "rldx", Load;
    Xlate = 78, "DIF_OP_XLATE", "xlate", Xlate;
    Xlarg = 79, "DIF_OP_XLARG", "xlarg", Xlate;
}

/// Smallest opcode value.
pub const DIF_OP_MIN: u8 = 1;
/// Largest opcode value.
pub const DIF_OP_MAX: u8 = 79;

impl TryFrom<u8> for Opcode {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        Opcode::from_u8(raw).ok_or(UnknownValue(raw as u64))
    }
}

/// The address space a load reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSpace {
    /// Plain kernel load (`LD*`), rewritten to the checked form for
    /// consumers without kernel visibility.
    Kernel,
    /// User-space load of the current process (`ULD*`).
    User,
    /// Kernel load restricted to what the consumer may read (`RLD*`).
    Checked,
}

impl Opcode {
    /// For a load opcode: (address space, width in bytes, sign-extending).
    pub const fn load_info(self) -> Option<(LoadSpace, u8, bool)> {
        use LoadSpace::*;
        use Opcode::*;
        Some(match self {
            Ldsb => (Kernel, 1, true),
            Ldsh => (Kernel, 2, true),
            Ldsw => (Kernel, 4, true),
            Ldub => (Kernel, 1, false),
            Lduh => (Kernel, 2, false),
            Lduw => (Kernel, 4, false),
            Ldx => (Kernel, 8, false),
            Uldsb => (User, 1, true),
            Uldsh => (User, 2, true),
            Uldsw => (User, 4, true),
            Uldub => (User, 1, false),
            Ulduh => (User, 2, false),
            Ulduw => (User, 4, false),
            Uldx => (User, 8, false),
            Rldsb => (Checked, 1, true),
            Rldsh => (Checked, 2, true),
            Rldsw => (Checked, 4, true),
            Rldub => (Checked, 1, false),
            Rlduh => (Checked, 2, false),
            Rlduw => (Checked, 4, false),
            Rldx => (Checked, 8, false),
            _ => return None,
        })
    }

    /// For a store opcode (STB..STX): width in bytes.
    pub const fn store_width(self) -> Option<u8> {
        match self {
            Opcode::Stb => Some(1),
            Opcode::Sth => Some(2),
            Opcode::Stw => Some(4),
            Opcode::Stx => Some(8),
            _ => None,
        }
    }

    /// The checked (`RLD*`) form of a plain kernel load; other opcodes are
    /// returned unchanged. The kernel applies this rewrite for consumers that
    /// lack kernel visibility.
    pub const fn to_checked_load(self) -> Opcode {
        use Opcode::*;
        match self {
            Ldsb => Rldsb,
            Ldsh => Rldsh,
            Ldsw => Rldsw,
            Ldub => Rldub,
            Lduh => Rlduh,
            Lduw => Rlduw,
            Ldx => Rldx,
            other => other,
        }
    }

    /// Whether the branch is taken given condition codes `n z v c` as set by
    /// CMP/TST/SCMP. `None` for non-branch opcodes.
    pub const fn branch_taken(self, cc: ConditionCodes) -> Option<bool> {
        let ConditionCodes { n, z, v, c } = cc;
        Some(match self {
            Opcode::Ba => true,
            Opcode::Be => z,
            Opcode::Bne => !z,
            Opcode::Bg => !(z | (n ^ v)),
            Opcode::Bgu => !(c | z),
            Opcode::Bge => !(n ^ v),
            Opcode::Bgeu => !c,
            Opcode::Bl => n ^ v,
            Opcode::Blu => c,
            Opcode::Ble => z | (n ^ v),
            Opcode::Bleu => c | z,
            _ => return None,
        })
    }
}

/// The DIF machine's condition codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConditionCodes {
    /// Negative: the signed comparison came out below zero.
    pub n: bool,
    /// Zero: the operands were equal (or TST's operand was zero).
    pub z: bool,
    /// Overflow: always cleared by DIF's compare instructions.
    pub v: bool,
    /// Carry: unsigned `r1 < r2`.
    pub c: bool,
}

impl ConditionCodes {
    /// The codes CMP sets for `r1` vs `r2`.
    pub const fn compare(r1: u64, r2: u64) -> Self {
        ConditionCodes {
            n: (r1.wrapping_sub(r2) as i64) < 0,
            z: r1 == r2,
            v: false,
            c: r1 < r2,
        }
    }

    /// The codes TST sets for `r1`.
    pub const fn test(r1: u64) -> Self {
        ConditionCodes {
            n: false,
            z: r1 == 0,
            v: false,
            c: false,
        }
    }
}

// ---------------------------------------------------------------------------
// Typed instructions
// ---------------------------------------------------------------------------

/// Why a 32-bit word is not a well-formed DIF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The opcode byte names no DIF opcode (includes 0).
    UnknownOpcode(u8),
    /// A field that must be zero for this opcode is not.
    ReservedBits(Opcode),
}

/// Why an [`Instruction`] cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The opcode does not belong to the variant it was placed in.
    WrongForm(Opcode),
    /// A branch target above [`DIF_LABEL_MAX`].
    LabelTooLarge(u32),
}

/// One decoded DIF instruction. Each variant corresponds to one
/// [`OperandForm`]; the `op` fields must have that form (checked by
/// [`Instruction::encode`]). Register operands are raw bytes; the validator
/// enforces `< DIF_DIR_NREGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// `op %r1, %r2, %rd` — OR XOR AND SLL SRL SUB ADD MUL SDIV UDIV SREM UREM SRA.
    Reg3 {
        op: Opcode,
        r1: Reg,
        r2: Reg,
        rd: Reg,
    },
    /// `op %r1, %rd` — NOT, MOV.
    Reg2 { op: Opcode, r1: Reg, rd: Reg },
    /// `op %r1, %r2` — CMP, SCMP.
    Compare { op: Opcode, r1: Reg, r2: Reg },
    /// `tst %r1`.
    Test { r1: Reg },
    /// `op label` — BA..BLEU; `label` is an absolute instruction index.
    Branch { op: Opcode, label: u32 },
    /// `op [%r1], %rd` — every plain, user and checked load.
    Load { op: Opcode, addr: Reg, rd: Reg },
    /// `op %rs, [%rd]` — STB STH STW STX (value in the r1 byte, address in rd).
    Store { op: Opcode, rs: Reg, addr: Reg },
    /// `ret %rd`.
    Ret { rd: Reg },
    /// `nop`, `popts`, `flushts`.
    Plain { op: Opcode },
    /// `setx DIF_INTEGER[index], %rd`.
    Setx { index: u16, rd: Reg },
    /// `sets DIF_STRING[offset], %rd`.
    Sets { offset: u16, rd: Reg },
    /// `op var[%index], %rd` — LDGA, LDTA (8-bit array id).
    LoadArray {
        op: Opcode,
        var: u8,
        index: Reg,
        rd: Reg,
    },
    /// `op var, %rd` — LDGS LDTS LDLS LDGAA LDTAA.
    LoadVar { op: Opcode, var: u16, rd: Reg },
    /// `op %rs, var` — STGS STTS STLS STGAA STTAA.
    StoreVar { op: Opcode, var: u16, rs: Reg },
    /// `call subr, %rd` (subroutine id; see [`Subr`]).
    Call { subr: u16, rd: Reg },
    /// `op type, %size, %rs` — PUSHTR (by reference), PUSHTV (by value);
    /// `ty` is a `DIF_TYPE_*` value.
    PushTuple {
        op: Opcode,
        ty: u8,
        size: Reg,
        rs: Reg,
    },
    /// `allocs %size, %rd`.
    Allocs { size: Reg, rd: Reg },
    /// `copys %src, %size, %dst`.
    Copys { src: Reg, size: Reg, dst: Reg },
    /// `op xlref, %rd` — XLATE, XLARG (user-level translators only).
    Xlate { op: Opcode, xlref: u16, rd: Reg },
}

impl Instruction {
    /// The instruction's opcode.
    pub const fn opcode(&self) -> Opcode {
        match *self {
            Instruction::Reg3 { op, .. }
            | Instruction::Reg2 { op, .. }
            | Instruction::Compare { op, .. }
            | Instruction::Branch { op, .. }
            | Instruction::Load { op, .. }
            | Instruction::Store { op, .. }
            | Instruction::Plain { op }
            | Instruction::LoadArray { op, .. }
            | Instruction::LoadVar { op, .. }
            | Instruction::StoreVar { op, .. }
            | Instruction::PushTuple { op, .. }
            | Instruction::Xlate { op, .. } => op,
            Instruction::Test { .. } => Opcode::Tst,
            Instruction::Ret { .. } => Opcode::Ret,
            Instruction::Setx { .. } => Opcode::Setx,
            Instruction::Sets { .. } => Opcode::Sets,
            Instruction::Call { .. } => Opcode::Call,
            Instruction::Allocs { .. } => Opcode::Allocs,
            Instruction::Copys { .. } => Opcode::Copys,
        }
    }

    /// The form this variant encodes.
    const fn variant_form(&self) -> OperandForm {
        match self {
            Instruction::Reg3 { .. } => OperandForm::Reg3,
            Instruction::Reg2 { .. } => OperandForm::Reg2,
            Instruction::Compare { .. } => OperandForm::Compare,
            Instruction::Test { .. } => OperandForm::Test,
            Instruction::Branch { .. } => OperandForm::Branch,
            Instruction::Load { .. } => OperandForm::Load,
            Instruction::Store { .. } => OperandForm::Store,
            Instruction::Ret { .. } => OperandForm::Ret,
            Instruction::Plain { .. } => OperandForm::NoOperands,
            Instruction::Setx { .. } => OperandForm::SetInt,
            Instruction::Sets { .. } => OperandForm::SetStr,
            Instruction::LoadArray { .. } => OperandForm::LoadArray,
            Instruction::LoadVar { .. } => OperandForm::LoadVar,
            Instruction::StoreVar { .. } => OperandForm::StoreVar,
            Instruction::Call { .. } => OperandForm::Call,
            Instruction::PushTuple { .. } => OperandForm::PushTuple,
            Instruction::Allocs { .. } => OperandForm::Allocs,
            Instruction::Copys { .. } => OperandForm::Copys,
            Instruction::Xlate { .. } => OperandForm::Xlate,
        }
    }

    /// Encodes to the 32-bit instruction word.
    pub const fn encode(&self) -> Result<u32, EncodeError> {
        let op = self.opcode();
        if !form_eq(op.form(), self.variant_form()) {
            return Err(EncodeError::WrongForm(op));
        }
        let o = op as u8;
        Ok(match *self {
            Instruction::Reg3 { r1, r2, rd, .. } => instr_fmt(o, r1, r2, rd),
            Instruction::Reg2 { r1, rd, .. } => instr_fmt(o, r1, 0, rd),
            Instruction::Compare { r1, r2, .. } => instr_fmt(o, r1, r2, 0),
            Instruction::Test { r1 } => instr_fmt(o, r1, 0, 0),
            Instruction::Branch { label, .. } => {
                if label > DIF_LABEL_MAX {
                    return Err(EncodeError::LabelTooLarge(label));
                }
                ((o as u32) << 24) | label
            }
            Instruction::Load { addr, rd, .. } => instr_fmt(o, addr, 0, rd),
            Instruction::Store { rs, addr, .. } => instr_fmt(o, rs, 0, addr),
            Instruction::Ret { rd } => instr_fmt(o, 0, 0, rd),
            Instruction::Plain { .. } => instr_fmt(o, 0, 0, 0),
            Instruction::Setx { index, rd } => instr_imm(o, index, rd),
            Instruction::Sets { offset, rd } => instr_imm(o, offset, rd),
            Instruction::LoadArray { var, index, rd, .. } => instr_fmt(o, var, index, rd),
            Instruction::LoadVar { var, rd, .. } => instr_imm(o, var, rd),
            Instruction::StoreVar { var, rs, .. } => instr_imm(o, var, rs),
            Instruction::Call { subr, rd } => instr_imm(o, subr, rd),
            Instruction::PushTuple { ty, size, rs, .. } => instr_fmt(o, ty, size, rs),
            Instruction::Allocs { size, rd } => instr_fmt(o, size, 0, rd),
            Instruction::Copys { src, size, dst } => instr_fmt(o, src, size, dst),
            Instruction::Xlate { xlref, rd, .. } => instr_imm(o, xlref, rd),
        })
    }

    /// Decodes a 32-bit instruction word. Fails on an unknown opcode or on
    /// non-zero bits in a field the opcode does not use.
    pub const fn decode(word: u32) -> Result<Instruction, DecodeError> {
        let raw_op = instr_op(word);
        let op = match Opcode::from_u8(raw_op) {
            Some(op) => op,
            None => return Err(DecodeError::UnknownOpcode(raw_op)),
        };
        let (r1, r2, rd) = (instr_r1(word), instr_r2(word), instr_rd(word));
        let imm = instr_imm16(word);
        let reserved_ok = match op.form() {
            OperandForm::Reg2 | OperandForm::Load | OperandForm::Store | OperandForm::Allocs => {
                r2 == 0
            }
            OperandForm::Compare => rd == 0,
            OperandForm::Test => r2 == 0 && rd == 0,
            OperandForm::Ret => r1 == 0 && r2 == 0,
            OperandForm::NoOperands => word & DIF_LABEL_MAX == 0,
            _ => true,
        };
        if !reserved_ok {
            return Err(DecodeError::ReservedBits(op));
        }
        Ok(match op.form() {
            OperandForm::Reg3 => Instruction::Reg3 { op, r1, r2, rd },
            OperandForm::Reg2 => Instruction::Reg2 { op, r1, rd },
            OperandForm::Compare => Instruction::Compare { op, r1, r2 },
            OperandForm::Test => Instruction::Test { r1 },
            OperandForm::Branch => Instruction::Branch {
                op,
                label: instr_label(word),
            },
            OperandForm::Load => Instruction::Load { op, addr: r1, rd },
            OperandForm::Store => Instruction::Store {
                op,
                rs: r1,
                addr: rd,
            },
            OperandForm::Ret => Instruction::Ret { rd },
            OperandForm::NoOperands => Instruction::Plain { op },
            OperandForm::SetInt => Instruction::Setx { index: imm, rd },
            OperandForm::SetStr => Instruction::Sets { offset: imm, rd },
            OperandForm::LoadArray => Instruction::LoadArray {
                op,
                var: r1,
                index: r2,
                rd,
            },
            OperandForm::LoadVar => Instruction::LoadVar { op, var: imm, rd },
            OperandForm::StoreVar => Instruction::StoreVar {
                op,
                var: imm,
                rs: rd,
            },
            OperandForm::Call => Instruction::Call { subr: imm, rd },
            OperandForm::PushTuple => Instruction::PushTuple {
                op,
                ty: r1,
                size: r2,
                rs: rd,
            },
            OperandForm::Allocs => Instruction::Allocs { size: r1, rd },
            OperandForm::Copys => Instruction::Copys {
                src: r1,
                size: r2,
                dst: rd,
            },
            OperandForm::Xlate => Instruction::Xlate { op, xlref: imm, rd },
        })
    }
}

/// `PartialEq` is not usable in `const fn`; compare discriminants instead.
const fn form_eq(a: OperandForm, b: OperandForm) -> bool {
    a as u8 == b as u8
}

impl TryFrom<u32> for Instruction {
    type Error = DecodeError;
    fn try_from(word: u32) -> Result<Self, DecodeError> {
        Instruction::decode(word)
    }
}

// ---------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------

/// First array variable id (`DIF_VAR_ARRAY_MIN`).
pub const DIF_VAR_ARRAY_MIN: u16 = 0x0000;
/// First user-defined array id (`DIF_VAR_ARRAY_UBASE`).
pub const DIF_VAR_ARRAY_UBASE: u16 = 0x0080;
/// Last array id (`DIF_VAR_ARRAY_MAX`).
pub const DIF_VAR_ARRAY_MAX: u16 = 0x00ff;
/// First scalar/associative variable id (`DIF_VAR_OTHER_MIN`).
pub const DIF_VAR_OTHER_MIN: u16 = 0x0100;
/// First user-defined scalar/associative id (`DIF_VAR_OTHER_UBASE`); the
/// storage index of a user variable is `id - DIF_VAR_OTHER_UBASE`.
pub const DIF_VAR_OTHER_UBASE: u16 = 0x0500;
/// Last variable id (`DIF_VAR_OTHER_MAX`).
pub const DIF_VAR_OTHER_MAX: u16 = 0xffff;

macro_rules! builtin_vars {
    ($( $variant:ident = $num:literal, $cname:literal, $name:literal; )+) => {
        /// A built-in D variable with a fixed DIF id (`DIF_VAR_*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum BuiltinVar {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), "): D name `", $name, "`.")]
                $variant = $num,
            )+
        }

        impl BuiltinVar {
            /// Every built-in variable, in id order.
            pub const ALL: &'static [BuiltinVar] = &[$(BuiltinVar::$variant),+];

            /// The variable for a raw id, if it is built in.
            pub const fn from_id(id: u16) -> Option<BuiltinVar> {
                match id {
                    $($num => Some(BuiltinVar::$variant),)+
                    _ => None,
                }
            }

            /// The name D programs use.
            pub const fn name(self) -> &'static str {
                match self { $(BuiltinVar::$variant => $name,)+ }
            }

            /// The C macro name, e.g. `DIF_VAR_TIMESTAMP`.
            pub const fn c_name(self) -> &'static str {
                match self { $(BuiltinVar::$variant => $cname,)+ }
            }

            /// Looks a variable up by its D name.
            pub fn from_name(name: &str) -> Option<BuiltinVar> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

builtin_vars! {
    Args = 0x0000, "DIF_VAR_ARGS", "args";
    Regs = 0x0001, "DIF_VAR_REGS", "regs";
    Uregs = 0x0002, "DIF_VAR_UREGS", "uregs";
    Curthread = 0x0100, "DIF_VAR_CURTHREAD", "curthread";
    Timestamp = 0x0101, "DIF_VAR_TIMESTAMP", "timestamp";
    Vtimestamp = 0x0102, "DIF_VAR_VTIMESTAMP", "vtimestamp";
    Ipl = 0x0103, "DIF_VAR_IPL", "ipl";
    Epid = 0x0104, "DIF_VAR_EPID", "epid";
    Id = 0x0105, "DIF_VAR_ID", "id";
    Arg0 = 0x0106, "DIF_VAR_ARG0", "arg0";
    Arg1 = 0x0107, "DIF_VAR_ARG1", "arg1";
    Arg2 = 0x0108, "DIF_VAR_ARG2", "arg2";
    Arg3 = 0x0109, "DIF_VAR_ARG3", "arg3";
    Arg4 = 0x010a, "DIF_VAR_ARG4", "arg4";
    Arg5 = 0x010b, "DIF_VAR_ARG5", "arg5";
    Arg6 = 0x010c, "DIF_VAR_ARG6", "arg6";
    Arg7 = 0x010d, "DIF_VAR_ARG7", "arg7";
    Arg8 = 0x010e, "DIF_VAR_ARG8", "arg8";
    Arg9 = 0x010f, "DIF_VAR_ARG9", "arg9";
    Stackdepth = 0x0110, "DIF_VAR_STACKDEPTH", "stackdepth";
    Caller = 0x0111, "DIF_VAR_CALLER", "caller";
    Probeprov = 0x0112, "DIF_VAR_PROBEPROV", "probeprov";
    Probemod = 0x0113, "DIF_VAR_PROBEMOD", "probemod";
    Probefunc = 0x0114, "DIF_VAR_PROBEFUNC", "probefunc";
    Probename = 0x0115, "DIF_VAR_PROBENAME", "probename";
    Pid = 0x0116, "DIF_VAR_PID", "pid";
    Tid = 0x0117, "DIF_VAR_TID", "tid";
    Execname = 0x0118, "DIF_VAR_EXECNAME", "execname";
    Zonename = 0x0119, "DIF_VAR_ZONENAME", "zonename";
    Walltimestamp = 0x011a, "DIF_VAR_WALLTIMESTAMP", "walltimestamp";
    Ustackdepth = 0x011b, "DIF_VAR_USTACKDEPTH", "ustackdepth";
    Ucaller = 0x011c, "DIF_VAR_UCALLER", "ucaller";
    Ppid = 0x011d, "DIF_VAR_PPID", "ppid";
    Uid = 0x011e, "DIF_VAR_UID", "uid";
    Gid = 0x011f, "DIF_VAR_GID", "gid";
    Errno = 0x0120, "DIF_VAR_ERRNO", "errno";
    Execargs = 0x0121, "DIF_VAR_EXECARGS", "execargs";
    Jid = 0x0122, "DIF_VAR_JID", "jid";
    Jailname = 0x0123, "DIF_VAR_JAILNAME", "jailname";
    Cpu = 0x0200, "DIF_VAR_CPU", "cpu";
}

impl BuiltinVar {
    /// The raw DIF variable id.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// Whether this is one of the built-in arrays (`args[]`, `regs[]`,
    /// `uregs[]`), accessed with LDGA.
    pub const fn is_array(self) -> bool {
        (self as u16) <= DIF_VAR_ARRAY_MAX
    }

    /// For `arg0`..`arg9`: the argument index.
    pub const fn arg_index(self) -> Option<u8> {
        let id = self as u16;
        if id >= BuiltinVar::Arg0 as u16 && id <= BuiltinVar::Arg9 as u16 {
            Some((id - BuiltinVar::Arg0 as u16) as u8)
        } else {
            None
        }
    }
}

impl TryFrom<u16> for BuiltinVar {
    type Error = UnknownValue;
    fn try_from(id: u16) -> Result<Self, UnknownValue> {
        BuiltinVar::from_id(id).ok_or(UnknownValue(id as u64))
    }
}

// ---------------------------------------------------------------------------
// Subroutines
// ---------------------------------------------------------------------------

macro_rules! subroutines {
    ($( $variant:ident = $num:literal, $cname:literal, $name:literal; )+) => {
        /// A DIF subroutine (`DIF_SUBR_*`), current FreeBSD numbering.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Subr {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), "): D function `", $name, "()`.")]
                $variant = $num,
            )+
        }

        impl Subr {
            /// Every subroutine, in id order (index == id).
            pub const ALL: &'static [Subr] = &[$(Subr::$variant),+];

            /// The subroutine for a raw id, if known.
            pub const fn from_id(id: u16) -> Option<Subr> {
                match id {
                    $($num => Some(Subr::$variant),)+
                    _ => None,
                }
            }

            /// The D function name.
            pub const fn name(self) -> &'static str {
                match self { $(Subr::$variant => $name,)+ }
            }

            /// The C macro name, e.g. `DIF_SUBR_STRLEN`.
            pub const fn c_name(self) -> &'static str {
                match self { $(Subr::$variant => $cname,)+ }
            }

            /// Looks a subroutine up by its D function name.
            pub fn from_name(name: &str) -> Option<Subr> {
                Self::ALL.iter().copied().find(|s| s.name() == name)
            }
        }
    };
}

subroutines! {
    Rand = 0, "DIF_SUBR_RAND", "rand";
    MutexOwned = 1, "DIF_SUBR_MUTEX_OWNED", "mutex_owned";
    MutexOwner = 2, "DIF_SUBR_MUTEX_OWNER", "mutex_owner";
    MutexTypeAdaptive = 3, "DIF_SUBR_MUTEX_TYPE_ADAPTIVE", "mutex_type_adaptive";
    MutexTypeSpin = 4, "DIF_SUBR_MUTEX_TYPE_SPIN", "mutex_type_spin";
    RwReadHeld = 5, "DIF_SUBR_RW_READ_HELD", "rw_read_held";
    RwWriteHeld = 6, "DIF_SUBR_RW_WRITE_HELD", "rw_write_held";
    RwIswriter = 7, "DIF_SUBR_RW_ISWRITER", "rw_iswriter";
    Copyin = 8, "DIF_SUBR_COPYIN", "copyin";
    Copyinstr = 9, "DIF_SUBR_COPYINSTR", "copyinstr";
    Speculation = 10, "DIF_SUBR_SPECULATION", "speculation";
    Progenyof = 11, "DIF_SUBR_PROGENYOF", "progenyof";
    Strlen = 12, "DIF_SUBR_STRLEN", "strlen";
    Copyout = 13, "DIF_SUBR_COPYOUT", "copyout";
    Copyoutstr = 14, "DIF_SUBR_COPYOUTSTR", "copyoutstr";
    Alloca = 15, "DIF_SUBR_ALLOCA", "alloca";
    Bcopy = 16, "DIF_SUBR_BCOPY", "bcopy";
    Copyinto = 17, "DIF_SUBR_COPYINTO", "copyinto";
    Msgdsize = 18, "DIF_SUBR_MSGDSIZE", "msgdsize";
    Msgsize = 19, "DIF_SUBR_MSGSIZE", "msgsize";
    Getmajor = 20, "DIF_SUBR_GETMAJOR", "getmajor";
    Getminor = 21, "DIF_SUBR_GETMINOR", "getminor";
    DdiPathname = 22, "DIF_SUBR_DDI_PATHNAME", "ddi_pathname";
    Strjoin = 23, "DIF_SUBR_STRJOIN", "strjoin";
    Lltostr = 24, "DIF_SUBR_LLTOSTR", "lltostr";
    Basename = 25, "DIF_SUBR_BASENAME", "basename";
    Dirname = 26, "DIF_SUBR_DIRNAME", "dirname";
    Cleanpath = 27, "DIF_SUBR_CLEANPATH", "cleanpath";
    Strchr = 28, "DIF_SUBR_STRCHR", "strchr";
    Strrchr = 29, "DIF_SUBR_STRRCHR", "strrchr";
    Strstr = 30, "DIF_SUBR_STRSTR", "strstr";
    Strtok = 31, "DIF_SUBR_STRTOK", "strtok";
    Substr = 32, "DIF_SUBR_SUBSTR", "substr";
    Index = 33, "DIF_SUBR_INDEX", "index";
    Rindex = 34, "DIF_SUBR_RINDEX", "rindex";
    Htons = 35, "DIF_SUBR_HTONS", "htons";
    Htonl = 36, "DIF_SUBR_HTONL", "htonl";
    Htonll = 37, "DIF_SUBR_HTONLL", "htonll";
    Ntohs = 38, "DIF_SUBR_NTOHS", "ntohs";
    Ntohl = 39, "DIF_SUBR_NTOHL", "ntohl";
    Ntohll = 40, "DIF_SUBR_NTOHLL", "ntohll";
    InetNtop = 41, "DIF_SUBR_INET_NTOP", "inet_ntop";
    InetNtoa = 42, "DIF_SUBR_INET_NTOA", "inet_ntoa";
    InetNtoa6 = 43, "DIF_SUBR_INET_NTOA6", "inet_ntoa6";
    Toupper = 44, "DIF_SUBR_TOUPPER", "toupper";
    Tolower = 45, "DIF_SUBR_TOLOWER", "tolower";
    Memref = 46, "DIF_SUBR_MEMREF", "memref";
    SxSharedHeld = 47, "DIF_SUBR_SX_SHARED_HELD", "sx_shared_held";
    SxExclusiveHeld = 48, "DIF_SUBR_SX_EXCLUSIVE_HELD", "sx_exclusive_held";
    SxIsexclusive = 49, "DIF_SUBR_SX_ISEXCLUSIVE", "sx_isexclusive";
    Memstr = 50, "DIF_SUBR_MEMSTR", "memstr";
    Getf = 51, "DIF_SUBR_GETF", "getf";
    Json = 52, "DIF_SUBR_JSON", "json";
    Strtoll = 53, "DIF_SUBR_STRTOLL", "strtoll";
}

/// Highest subroutine id of current FreeBSD (`DIF_SUBR_MAX`); the kernel
/// rejects CALL with a larger id.
pub const DIF_SUBR_MAX: u16 = 53;

impl Subr {
    /// The raw subroutine id.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// Subroutines that write to user memory; a DIFO calling one is
    /// destructive and needs the destructive option.
    pub const fn is_destructive(self) -> bool {
        matches!(self, Subr::Copyout | Subr::Copyoutstr)
    }
}

impl TryFrom<u16> for Subr {
    type Error = UnknownValue;
    fn try_from(id: u16) -> Result<Self, UnknownValue> {
        Subr::from_id(id).ok_or(UnknownValue(id as u64))
    }
}

// ---------------------------------------------------------------------------
// dtrace_diftype_t / dtrace_difv_t
// ---------------------------------------------------------------------------

/// `DIF_TYPE_CTF`: the value is described by a CTF type.
pub const DIF_TYPE_CTF: u8 = 0;
/// `DIF_TYPE_STRING`: the value is a D string.
pub const DIF_TYPE_STRING: u8 = 1;

/// What a [`DifType`] describes (`dtdt_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DifTypeKind {
    /// A CTF-described C type.
    Ctf = DIF_TYPE_CTF,
    /// A D string.
    String = DIF_TYPE_STRING,
}

impl TryFrom<u8> for DifTypeKind {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        match raw {
            DIF_TYPE_CTF => Ok(DifTypeKind::Ctf),
            DIF_TYPE_STRING => Ok(DifTypeKind::String),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

bitflags::bitflags! {
    /// `dtdt_flags` bits (`DIF_TF_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DifTypeFlags: u8 {
        /// The value is passed by reference to kernel memory (`DIF_TF_BYREF`).
        const BYREF = 0x1;
        /// The value is passed by reference to user memory (`DIF_TF_BYUREF`).
        const BYUREF = 0x2;
    }
}

/// `dtrace_diftype_t`: the type of a DIFO's result, a variable, or a
/// translator member. 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DifType {
    /// `dtdt_kind`: a `DIF_TYPE_*` value.
    pub kind: u8,
    /// `dtdt_ckind`: the CTF kind of the type (CTF types only).
    pub ckind: u8,
    /// `dtdt_flags`: `DIF_TF_*` bits.
    pub flags: u8,
    /// `dtdt_pad`: reserved, zero.
    pub pad: u8,
    /// `dtdt_size`: size in bytes (for strings: the string size).
    pub size: u32,
}
/// C name of [`DifType`].
pub type dtrace_diftype_t = DifType;

abi_struct!(DifType, size = 8, align = 4, {
    kind @ 0, ckind @ 1, flags @ 2, pad @ 3, size @ 4,
});

impl DifType {
    /// A by-value CTF integer-like type of `size` bytes with CTF kind `ckind`.
    pub const fn ctf(ckind: u8, size: u32) -> Self {
        DifType {
            kind: DIF_TYPE_CTF,
            ckind,
            flags: 0,
            pad: 0,
            size,
        }
    }

    /// A D string of `size` bytes (always by reference).
    pub const fn string(size: u32) -> Self {
        DifType {
            kind: DIF_TYPE_STRING,
            ckind: 0,
            flags: DifTypeFlags::BYREF.bits(),
            pad: 0,
            size,
        }
    }

    /// The typed kind, or the raw value if unknown.
    pub fn kind(&self) -> Result<DifTypeKind, UnknownValue> {
        DifTypeKind::try_from(self.kind)
    }

    /// The flag bits; unknown bits are kept (`from_bits_retain`) so a
    /// validator can see and reject them.
    pub const fn flags(&self) -> DifTypeFlags {
        DifTypeFlags::from_bits_retain(self.flags)
    }

    /// Whether the value travels by reference (kernel or user memory).
    pub const fn is_by_ref(&self) -> bool {
        self.flags & (DifTypeFlags::BYREF.bits() | DifTypeFlags::BYUREF.bits()) != 0
    }
}

/// `DIFV_KIND_ARRAY`.
pub const DIFV_KIND_ARRAY: u8 = 0;
/// `DIFV_KIND_SCALAR`.
pub const DIFV_KIND_SCALAR: u8 = 1;
/// `DIFV_SCOPE_GLOBAL`.
pub const DIFV_SCOPE_GLOBAL: u8 = 0;
/// `DIFV_SCOPE_THREAD`.
pub const DIFV_SCOPE_THREAD: u8 = 1;
/// `DIFV_SCOPE_LOCAL`.
pub const DIFV_SCOPE_LOCAL: u8 = 2;

/// Variable kind (`dtdv_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DifVarKind {
    /// Associative array (`DIFV_KIND_ARRAY`).
    Array = DIFV_KIND_ARRAY,
    /// Scalar (`DIFV_KIND_SCALAR`).
    Scalar = DIFV_KIND_SCALAR,
}

impl TryFrom<u8> for DifVarKind {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        match raw {
            DIFV_KIND_ARRAY => Ok(DifVarKind::Array),
            DIFV_KIND_SCALAR => Ok(DifVarKind::Scalar),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

/// Variable scope (`dtdv_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DifVarScope {
    /// Global (`DIFV_SCOPE_GLOBAL`).
    Global = DIFV_SCOPE_GLOBAL,
    /// Thread-local, `self->x` (`DIFV_SCOPE_THREAD`).
    Thread = DIFV_SCOPE_THREAD,
    /// Clause-local, `this->x` (`DIFV_SCOPE_LOCAL`).
    Local = DIFV_SCOPE_LOCAL,
}

impl TryFrom<u8> for DifVarScope {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        match raw {
            DIFV_SCOPE_GLOBAL => Ok(DifVarScope::Global),
            DIFV_SCOPE_THREAD => Ok(DifVarScope::Thread),
            DIFV_SCOPE_LOCAL => Ok(DifVarScope::Local),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

bitflags::bitflags! {
    /// `dtdv_flags` bits (`DIFV_F_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DifVarFlags: u16 {
        /// The DIFO reads the variable (`DIFV_F_REF`).
        const REF = 0x1;
        /// The DIFO writes the variable (`DIFV_F_MOD`).
        const MOD = 0x2;
    }
}

/// `dtrace_difv_t`: one entry of a DIFO's variable table. 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DifVar {
    /// `dtdv_name`: offset of the name in the DIFO's string table.
    pub name: u32,
    /// `dtdv_id`: the variable id used by instructions.
    pub id: u32,
    /// `dtdv_kind`: a `DIFV_KIND_*` value.
    pub kind: u8,
    /// `dtdv_scope`: a `DIFV_SCOPE_*` value.
    pub scope: u8,
    /// `dtdv_flags`: `DIFV_F_*` bits.
    pub flags: u16,
    /// `dtdv_type`: the variable's type.
    pub ty: DifType,
}
/// C name of [`DifVar`].
pub type dtrace_difv_t = DifVar;

abi_struct!(DifVar, size = 20, align = 4, {
    name @ 0, id @ 4, kind @ 8, scope @ 9, flags @ 10, ty @ 12,
});

impl DifVar {
    /// Typed kind.
    pub fn kind(&self) -> Result<DifVarKind, UnknownValue> {
        DifVarKind::try_from(self.kind)
    }
    /// Typed scope.
    pub fn scope(&self) -> Result<DifVarScope, UnknownValue> {
        DifVarScope::try_from(self.scope)
    }
    /// Flag bits, unknown bits retained.
    pub const fn flags(&self) -> DifVarFlags {
        DifVarFlags::from_bits_retain(self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    /// One representative instruction per opcode, using distinct non-zero
    /// operand values so a swapped field would be caught.
    fn sample(op: Opcode) -> Instruction {
        match op.form() {
            OperandForm::Reg3 => Instruction::Reg3 {
                op,
                r1: 1,
                r2: 2,
                rd: 3,
            },
            OperandForm::Reg2 => Instruction::Reg2 { op, r1: 4, rd: 5 },
            OperandForm::Compare => Instruction::Compare { op, r1: 6, r2: 7 },
            OperandForm::Test => Instruction::Test { r1: 2 },
            OperandForm::Branch => Instruction::Branch {
                op,
                label: 0x12_3456,
            },
            OperandForm::Load => Instruction::Load { op, addr: 1, rd: 7 },
            OperandForm::Store => Instruction::Store { op, rs: 3, addr: 4 },
            OperandForm::Ret => Instruction::Ret { rd: 5 },
            OperandForm::NoOperands => Instruction::Plain { op },
            OperandForm::SetInt => Instruction::Setx {
                index: 0xbeef,
                rd: 1,
            },
            OperandForm::SetStr => Instruction::Sets {
                offset: 0x1234,
                rd: 2,
            },
            OperandForm::LoadArray => Instruction::LoadArray {
                op,
                var: 0x81,
                index: 3,
                rd: 4,
            },
            OperandForm::LoadVar => Instruction::LoadVar {
                op,
                var: 0x0501,
                rd: 6,
            },
            OperandForm::StoreVar => Instruction::StoreVar {
                op,
                var: 0x0502,
                rs: 7,
            },
            OperandForm::Call => Instruction::Call {
                subr: Subr::Strlen as u16,
                rd: 3,
            },
            OperandForm::PushTuple => Instruction::PushTuple {
                op,
                ty: DIF_TYPE_STRING,
                size: 2,
                rs: 5,
            },
            OperandForm::Allocs => Instruction::Allocs { size: 1, rd: 2 },
            OperandForm::Copys => Instruction::Copys {
                src: 1,
                size: 2,
                dst: 3,
            },
            OperandForm::Xlate => Instruction::Xlate {
                op,
                xlref: 0x4242,
                rd: 1,
            },
        }
    }

    #[test]
    fn opcode_table_is_dense_and_consistent() {
        assert_eq!(Opcode::ALL.len(), 79);
        for (i, op) in Opcode::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i + 1);
            assert_eq!(Opcode::from_u8(*op as u8), Some(*op));
            assert_eq!(Opcode::from_mnemonic(op.mnemonic()), Some(*op));
            assert_eq!(
                op.c_name(),
                std::format!("DIF_OP_{}", op.mnemonic().to_uppercase())
            );
        }
        assert_eq!(Opcode::try_from(0u8), Err(UnknownValue(0)));
        assert_eq!(Opcode::try_from(80u8), Err(UnknownValue(80)));
        for raw in 80..=255u8 {
            assert!(Opcode::from_u8(raw).is_none());
        }
    }

    #[test]
    fn every_opcode_round_trips() {
        for &op in Opcode::ALL {
            let ins = sample(op);
            let word = ins.encode().unwrap();
            assert_eq!(instr_op(word), op as u8, "{op:?}");
            assert_eq!(Instruction::decode(word), Ok(ins), "{op:?}");
            assert_eq!(Instruction::decode(word).unwrap().encode(), Ok(word));
        }
    }

    #[test]
    fn known_encodings() {
        // Words computed by hand from the field layout (op 31..24, r1 23..16,
        // r2 15..8, rd 7..0; 16-bit immediates in 23..8).
        let add = Instruction::Reg3 {
            op: Opcode::Add,
            r1: 1,
            r2: 2,
            rd: 3,
        };
        assert_eq!(add.encode(), Ok(0x0701_0203));
        assert_eq!(Instruction::Ret { rd: 1 }.encode(), Ok(0x2300_0001));
        assert_eq!(
            Instruction::Setx {
                index: 0x0102,
                rd: 4
            }
            .encode(),
            Ok(0x2501_0204)
        );
        assert_eq!(
            Instruction::Call { subr: 12, rd: 2 }.encode(),
            Ok(0x2f00_0c02)
        );
        let ldgs = Instruction::LoadVar {
            op: Opcode::Ldgs,
            var: 0x0101,
            rd: 1,
        };
        assert_eq!(ldgs.encode(), Ok(0x2901_0101));
        let stts = Instruction::StoreVar {
            op: Opcode::Stts,
            var: 0x0500,
            rs: 3,
        };
        assert_eq!(stts.encode(), Ok(0x2d05_0003));
        let stx = Instruction::Store {
            op: Opcode::Stx,
            rs: 2,
            addr: 5,
        };
        assert_eq!(stx.encode(), Ok(0x3f02_0005));
        let ba = Instruction::Branch {
            op: Opcode::Ba,
            label: 9,
        };
        assert_eq!(ba.encode(), Ok(0x1100_0009));
        assert_eq!(
            Instruction::Plain { op: Opcode::Nop }.encode(),
            Ok(0x2400_0000)
        );
        let pushtr = Instruction::PushTuple {
            op: Opcode::Pushtr,
            ty: 1,
            size: 0,
            rs: 3,
        };
        assert_eq!(pushtr.encode(), Ok(0x3001_0003));
    }

    #[test]
    fn encode_rejects_wrong_form_and_big_label() {
        let bad = Instruction::Reg3 {
            op: Opcode::Ret,
            r1: 0,
            r2: 0,
            rd: 1,
        };
        assert_eq!(bad.encode(), Err(EncodeError::WrongForm(Opcode::Ret)));
        let bad = Instruction::Load {
            op: Opcode::Stb,
            addr: 1,
            rd: 2,
        };
        assert_eq!(bad.encode(), Err(EncodeError::WrongForm(Opcode::Stb)));
        let far = Instruction::Branch {
            op: Opcode::Be,
            label: 0x0100_0000,
        };
        assert_eq!(far.encode(), Err(EncodeError::LabelTooLarge(0x0100_0000)));
    }

    #[test]
    fn decode_rejects_unknown_and_reserved() {
        assert_eq!(Instruction::decode(0), Err(DecodeError::UnknownOpcode(0)));
        assert_eq!(
            Instruction::decode(0x5000_0000),
            Err(DecodeError::UnknownOpcode(0x50))
        );
        // MOV with a non-zero r2.
        assert_eq!(
            Instruction::decode(0x0e01_0102),
            Err(DecodeError::ReservedBits(Opcode::Mov))
        );
        // CMP with a non-zero rd.
        assert_eq!(
            Instruction::decode(0x0f01_0201),
            Err(DecodeError::ReservedBits(Opcode::Cmp))
        );
        // RET with r1 set.
        assert_eq!(
            Instruction::decode(0x2301_0001),
            Err(DecodeError::ReservedBits(Opcode::Ret))
        );
        // NOP with any operand bit.
        assert_eq!(
            Instruction::decode(0x2400_0100),
            Err(DecodeError::ReservedBits(Opcode::Nop))
        );
        // TST with rd set.
        assert_eq!(
            Instruction::decode(0x1001_0001),
            Err(DecodeError::ReservedBits(Opcode::Tst))
        );
    }

    #[test]
    fn decode_is_exact_inverse_over_operand_space() {
        // For every opcode, sweep a spread of operand patterns: whatever
        // decodes must re-encode to the same word.
        let patterns = [
            0u32, 1, 0xff, 0x100, 0xff00, 0x1_0000, 0xff_0000, 0x12_3456, 0xff_ffff,
        ];
        let mut decoded = 0;
        for raw_op in 0..=255u32 {
            for p in patterns {
                let word = (raw_op << 24) | p;
                if let Ok(ins) = Instruction::decode(word) {
                    decoded += 1;
                    assert_eq!(ins.encode(), Ok(word), "{word:#x}");
                }
            }
        }
        assert!(decoded > 79 * 2);
    }

    #[test]
    fn branch_conditions() {
        let lt = ConditionCodes::compare(1, 2);
        let eq = ConditionCodes::compare(5, 5);
        let gt_unsigned_lt_signed = ConditionCodes::compare(u64::MAX, 1); // -1 vs 1
        assert_eq!(Opcode::Bl.branch_taken(lt), Some(true));
        assert_eq!(Opcode::Bg.branch_taken(lt), Some(false));
        assert_eq!(Opcode::Be.branch_taken(eq), Some(true));
        assert_eq!(Opcode::Ble.branch_taken(eq), Some(true));
        assert_eq!(Opcode::Bge.branch_taken(eq), Some(true));
        assert_eq!(Opcode::Bl.branch_taken(gt_unsigned_lt_signed), Some(true));
        assert_eq!(Opcode::Bgu.branch_taken(gt_unsigned_lt_signed), Some(true));
        assert_eq!(Opcode::Blu.branch_taken(gt_unsigned_lt_signed), Some(false));
        assert_eq!(
            Opcode::Bne.branch_taken(ConditionCodes::test(0)),
            Some(false)
        );
        assert_eq!(Opcode::Add.branch_taken(eq), None);
    }

    #[test]
    fn load_store_info() {
        assert_eq!(Opcode::Uldsh.load_info(), Some((LoadSpace::User, 2, true)));
        assert_eq!(
            Opcode::Rldx.load_info(),
            Some((LoadSpace::Checked, 8, false))
        );
        assert_eq!(Opcode::Add.load_info(), None);
        assert_eq!(Opcode::Stw.store_width(), Some(4));
        assert_eq!(Opcode::Lduw.to_checked_load(), Opcode::Rlduw);
        assert_eq!(Opcode::Uldx.to_checked_load(), Opcode::Uldx);
        let loads = Opcode::ALL
            .iter()
            .filter(|o| o.load_info().is_some())
            .count();
        assert_eq!(loads, 21);
        assert!(Opcode::ALL
            .iter()
            .all(|o| o.load_info().is_some() == (o.form() == OperandForm::Load)));
    }

    #[test]
    fn builtin_var_table() {
        assert_eq!(BuiltinVar::ALL.len(), 40);
        for v in BuiltinVar::ALL {
            assert_eq!(BuiltinVar::from_id(v.id()), Some(*v));
            assert_eq!(BuiltinVar::from_name(v.name()), Some(*v));
            assert_eq!(
                v.c_name(),
                std::format!("DIF_VAR_{}", v.name().to_uppercase())
            );
        }
        assert_eq!(
            BuiltinVar::from_name("jailname").map(|v| v.id()),
            Some(0x123)
        );
        assert_eq!(BuiltinVar::from_name("cpu").map(|v| v.id()), Some(0x200));
        assert_eq!(BuiltinVar::Arg7.arg_index(), Some(7));
        assert_eq!(BuiltinVar::Pid.arg_index(), None);
        assert!(BuiltinVar::Args.is_array() && !BuiltinVar::Timestamp.is_array());
        assert!(BuiltinVar::try_from(0x124u16).is_err());
        assert!(BuiltinVar::try_from(DIF_VAR_OTHER_UBASE).is_err());
    }

    #[test]
    fn subroutine_table() {
        assert_eq!(Subr::ALL.len(), DIF_SUBR_MAX as usize + 1);
        for (i, s) in Subr::ALL.iter().enumerate() {
            assert_eq!(s.id() as usize, i);
            assert_eq!(Subr::from_name(s.name()), Some(*s));
            assert_eq!(
                s.c_name(),
                std::format!("DIF_SUBR_{}", s.name().to_uppercase())
            );
        }
        assert_eq!(Subr::from_name("strtoll"), Some(Subr::Strtoll));
        assert_eq!(Subr::Strtoll.id(), 53);
        assert_eq!(Subr::SxSharedHeld.id(), 47);
        assert!(Subr::try_from(54u16).is_err());
        assert!(Subr::from_name("typeref").is_none());
        assert!(Subr::Copyout.is_destructive() && !Subr::Copyin.is_destructive());
    }

    #[test]
    fn diftype_and_difv() {
        let t = DifType::string(256);
        assert_eq!(t.as_bytes(), &[1, 0, 1, 0, 0, 1, 0, 0]);
        assert_eq!(t.kind(), Ok(DifTypeKind::String));
        assert!(t.is_by_ref());
        assert!(!DifType::ctf(1, 8).is_by_ref());
        let bad = DifType {
            kind: 9,
            ..DifType::default()
        };
        assert_eq!(bad.kind(), Err(UnknownValue(9)));
        let v = DifVar {
            name: 3,
            id: 0x500,
            kind: DIFV_KIND_SCALAR,
            scope: DIFV_SCOPE_THREAD,
            flags: 3,
            ty: DifType::ctf(1, 4),
        };
        let back = DifVar::from_bytes(v.as_bytes()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.scope(), Ok(DifVarScope::Thread));
        assert_eq!(back.kind(), Ok(DifVarKind::Scalar));
        assert_eq!(back.flags(), DifVarFlags::REF | DifVarFlags::MOD);
        assert!(DifVarScope::try_from(3).is_err());
        assert!(DifVarKind::try_from(2).is_err());
    }
}
