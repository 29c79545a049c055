//! DOF, the DTrace Object Format: the file header, section headers, every
//! section type and the structs stored in them, relocation kinds and the
//! index sentinels. Layouts are fixed-width, so the same bytes serve ILP32
//! and LP64 producers.
//!
//! Contract: the structs are raw `#[repr(C)]` mirrors ([`crate::pod::Pod`]),
//! read from untrusted bytes with `Pod::read_at`; typed views (`DofSecType`,
//! `DofRelocType`, ...) are fallible conversions. Validation of a whole DOF
//! image (bounds, alignment, links) is the loader's job.
//!
//! Probe context: no DOF handling happens in probe context, but nothing here
//! allocates or panics either.

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::dif::DifType;
use crate::pod::abi_struct;
use crate::UnknownValue;

/// A section index inside a DOF image (`dof_secidx_t`).
pub type DofSecIdx = u32;
/// A byte offset into a DOF string table (`dof_stridx_t`).
pub type DofStrIdx = u32;

/// "No section" (`DOF_SECIDX_NONE`).
pub const DOF_SECIDX_NONE: DofSecIdx = 0xffff_ffff;
/// "No string" (`DOF_STRIDX_NONE`).
pub const DOF_STRIDX_NONE: DofStrIdx = 0xffff_ffff;

/// Length of `dofh_ident` (`DOF_ID_SIZE`).
pub const DOF_ID_SIZE: usize = 16;
/// `dofh_ident` index of the first magic byte (`DOF_ID_MAG0`).
pub const DOF_ID_MAG0: usize = 0;
/// `DOF_ID_MAG1`.
pub const DOF_ID_MAG1: usize = 1;
/// `DOF_ID_MAG2`.
pub const DOF_ID_MAG2: usize = 2;
/// `DOF_ID_MAG3`.
pub const DOF_ID_MAG3: usize = 3;
/// `dofh_ident` index of the data model byte (`DOF_ID_MODEL`).
pub const DOF_ID_MODEL: usize = 4;
/// `dofh_ident` index of the byte-order byte (`DOF_ID_ENCODING`).
pub const DOF_ID_ENCODING: usize = 5;
/// `dofh_ident` index of the DOF format version (`DOF_ID_VERSION`).
pub const DOF_ID_VERSION: usize = 6;
/// `dofh_ident` index of the DIF version (`DOF_ID_DIFVERS`).
pub const DOF_ID_DIFVERS: usize = 7;
/// `dofh_ident` index of the number of integer registers used (`DOF_ID_DIFIREG`).
pub const DOF_ID_DIFIREG: usize = 8;
/// `dofh_ident` index of the number of tuple registers used (`DOF_ID_DIFTREG`).
pub const DOF_ID_DIFTREG: usize = 9;
/// First of the trailing ident bytes that must be zero (`DOF_ID_PAD`).
pub const DOF_ID_PAD: usize = 10;

/// The four magic bytes, `\x7fDOF` (`DOF_MAG_STRING`).
pub const DOF_MAG: [u8; 4] = [0x7f, b'D', b'O', b'F'];

/// `DOF_MODEL_NONE`.
pub const DOF_MODEL_NONE: u8 = 0;
/// `DOF_MODEL_ILP32`.
pub const DOF_MODEL_ILP32: u8 = 1;
/// `DOF_MODEL_LP64`.
pub const DOF_MODEL_LP64: u8 = 2;
/// The model of every target rdtrace supports (`DOF_MODEL_NATIVE` on LP64).
pub const DOF_MODEL_NATIVE: u8 = DOF_MODEL_LP64;

/// `DOF_ENCODE_NONE`.
pub const DOF_ENCODE_NONE: u8 = 0;
/// `DOF_ENCODE_LSB`: little-endian.
pub const DOF_ENCODE_LSB: u8 = 1;
/// `DOF_ENCODE_MSB`: big-endian.
pub const DOF_ENCODE_MSB: u8 = 2;
/// The byte order of the machine this crate is built for (`DOF_ENCODE_NATIVE`).
pub const DOF_ENCODE_NATIVE: u8 = if cfg!(target_endian = "little") {
    DOF_ENCODE_LSB
} else {
    DOF_ENCODE_MSB
};

/// DOF format version 1 (`DOF_VERSION_1`).
pub const DOF_VERSION_1: u8 = 1;
/// DOF format version 2 (`DOF_VERSION_2`), which added translator sections.
pub const DOF_VERSION_2: u8 = 2;
/// The version this crate writes (`DOF_VERSION`).
pub const DOF_VERSION: u8 = DOF_VERSION_2;

/// The only valid header flags value (`DOF_FL_VALID`): no flags are defined.
pub const DOF_FL_VALID: u32 = 0;
/// Section flag: the section is part of the loadable image (`DOF_SECF_LOAD`).
pub const DOF_SECF_LOAD: u32 = 1;

/// Data model of a DOF image (`dofh_ident[DOF_ID_MODEL]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DofModel {
    /// `DOF_MODEL_NONE`.
    None = DOF_MODEL_NONE,
    /// `DOF_MODEL_ILP32`.
    Ilp32 = DOF_MODEL_ILP32,
    /// `DOF_MODEL_LP64`.
    Lp64 = DOF_MODEL_LP64,
}

impl TryFrom<u8> for DofModel {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        match raw {
            DOF_MODEL_NONE => Ok(DofModel::None),
            DOF_MODEL_ILP32 => Ok(DofModel::Ilp32),
            DOF_MODEL_LP64 => Ok(DofModel::Lp64),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

/// Byte order of a DOF image (`dofh_ident[DOF_ID_ENCODING]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DofEncoding {
    /// `DOF_ENCODE_NONE`.
    None = DOF_ENCODE_NONE,
    /// `DOF_ENCODE_LSB`.
    Lsb = DOF_ENCODE_LSB,
    /// `DOF_ENCODE_MSB`.
    Msb = DOF_ENCODE_MSB,
}

impl TryFrom<u8> for DofEncoding {
    type Error = UnknownValue;
    fn try_from(raw: u8) -> Result<Self, UnknownValue> {
        match raw {
            DOF_ENCODE_NONE => Ok(DofEncoding::None),
            DOF_ENCODE_LSB => Ok(DofEncoding::Lsb),
            DOF_ENCODE_MSB => Ok(DofEncoding::Msb),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

/// `dof_hdr_t`: the 64-byte file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofHdr {
    /// `dofh_ident`: magic, model, encoding, versions, register counts, zero pad.
    pub ident: [u8; DOF_ID_SIZE],
    /// `dofh_flags`: must be [`DOF_FL_VALID`] (0).
    pub flags: u32,
    /// `dofh_hdrsize`: size of this header (64).
    pub hdrsize: u32,
    /// `dofh_secsize`: size of one section header (32).
    pub secsize: u32,
    /// `dofh_secnum`: number of section headers.
    pub secnum: u32,
    /// `dofh_secoff`: file offset of the section header table (8-aligned).
    pub secoff: u64,
    /// `dofh_loadsz`: size of the loadable prefix, which is all the kernel
    /// copies in.
    pub loadsz: u64,
    /// `dofh_filesz`: size of the whole file.
    pub filesz: u64,
    /// `dofh_pad`: reserved, zero.
    pub pad: u64,
}
/// C name of [`DofHdr`].
pub type dof_hdr_t = DofHdr;

abi_struct!(DofHdr, size = 64, align = 8, {
    ident @ 0, flags @ 16, hdrsize @ 20, secsize @ 24, secnum @ 28,
    secoff @ 32, loadsz @ 40, filesz @ 48, pad @ 56,
});

/// Why a DOF header's identification bytes are unacceptable to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DofIdentError {
    /// The magic bytes are not `\x7fDOF`.
    BadMagic,
    /// The data model is neither ILP32 nor LP64.
    BadModel(u8),
    /// The encoding is not this machine's byte order.
    BadEncoding(u8),
    /// The DOF version is not 1 or 2.
    BadVersion(u8),
    /// The DIF version is not 2.
    BadDifVersion(u8),
    /// More integer registers than the machine has.
    TooManyIntRegs(u8),
    /// More tuple registers than the machine has.
    TooManyTupleRegs(u8),
    /// A trailing ident byte is non-zero.
    NonZeroPad,
    /// `dofh_flags` has bits set.
    BadFlags(u32),
    /// `dofh_secsize` is zero.
    ZeroSecSize,
}

impl DofHdr {
    /// Size of the header (`sizeof (dof_hdr_t)`).
    pub const SIZE: u32 = 64;

    /// A header for a native (LP64, this byte order, DOF v2, DIF v2) image
    /// using `int_regs` integer and `tuple_regs` tuple registers. The size
    /// and offset fields are left for the writer to fill.
    pub const fn native(int_regs: u8, tuple_regs: u8) -> Self {
        let mut ident = [0u8; DOF_ID_SIZE];
        ident[DOF_ID_MAG0] = DOF_MAG[0];
        ident[DOF_ID_MAG1] = DOF_MAG[1];
        ident[DOF_ID_MAG2] = DOF_MAG[2];
        ident[DOF_ID_MAG3] = DOF_MAG[3];
        ident[DOF_ID_MODEL] = DOF_MODEL_NATIVE;
        ident[DOF_ID_ENCODING] = DOF_ENCODE_NATIVE;
        ident[DOF_ID_VERSION] = DOF_VERSION;
        ident[DOF_ID_DIFVERS] = crate::dif::DIF_VERSION;
        ident[DOF_ID_DIFIREG] = int_regs;
        ident[DOF_ID_DIFTREG] = tuple_regs;
        DofHdr {
            ident,
            flags: DOF_FL_VALID,
            hdrsize: Self::SIZE,
            secsize: DofSec::SIZE,
            secnum: 0,
            secoff: Self::SIZE as u64,
            loadsz: 0,
            filesz: 0,
            pad: 0,
        }
    }

    /// The ident checks the kernel applies before looking at anything else.
    pub fn check_ident(&self) -> Result<(), DofIdentError> {
        let id = &self.ident;
        if id[..4] != DOF_MAG {
            return Err(DofIdentError::BadMagic);
        }
        let model = id[DOF_ID_MODEL];
        if model != DOF_MODEL_ILP32 && model != DOF_MODEL_LP64 {
            return Err(DofIdentError::BadModel(model));
        }
        if id[DOF_ID_ENCODING] != DOF_ENCODE_NATIVE {
            return Err(DofIdentError::BadEncoding(id[DOF_ID_ENCODING]));
        }
        let ver = id[DOF_ID_VERSION];
        if ver != DOF_VERSION_1 && ver != DOF_VERSION_2 {
            return Err(DofIdentError::BadVersion(ver));
        }
        if id[DOF_ID_DIFVERS] != crate::dif::DIF_VERSION_2 {
            return Err(DofIdentError::BadDifVersion(id[DOF_ID_DIFVERS]));
        }
        if id[DOF_ID_DIFIREG] > crate::dif::DIF_DIR_NREGS {
            return Err(DofIdentError::TooManyIntRegs(id[DOF_ID_DIFIREG]));
        }
        if id[DOF_ID_DIFTREG] > crate::dif::DIF_DTR_NREGS {
            return Err(DofIdentError::TooManyTupleRegs(id[DOF_ID_DIFTREG]));
        }
        if id[DOF_ID_PAD..].iter().any(|&b| b != 0) {
            return Err(DofIdentError::NonZeroPad);
        }
        if self.flags != DOF_FL_VALID {
            return Err(DofIdentError::BadFlags(self.flags));
        }
        if self.secsize == 0 {
            return Err(DofIdentError::ZeroSecSize);
        }
        Ok(())
    }

    /// Typed data model.
    pub fn model(&self) -> Result<DofModel, UnknownValue> {
        DofModel::try_from(self.ident[DOF_ID_MODEL])
    }

    /// Typed encoding.
    pub fn encoding(&self) -> Result<DofEncoding, UnknownValue> {
        DofEncoding::try_from(self.ident[DOF_ID_ENCODING])
    }
}

/// `dof_sec_t`: one section header. 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofSec {
    /// `dofs_type`: a `DOF_SECT_*` value.
    pub ty: u32,
    /// `dofs_align`: required alignment of the data (power of two).
    pub align: u32,
    /// `dofs_flags`: `DOF_SECF_*` bits.
    pub flags: u32,
    /// `dofs_entsize`: size of one table entry, 0 if not a table.
    pub entsize: u32,
    /// `dofs_offset`: file offset of the data.
    pub offset: u64,
    /// `dofs_size`: size of the data in bytes.
    pub size: u64,
}
/// C name of [`DofSec`].
pub type dof_sec_t = DofSec;

abi_struct!(DofSec, size = 32, align = 8, {
    ty @ 0, align @ 4, flags @ 8, entsize @ 12, offset @ 16, size @ 24,
});

impl DofSec {
    /// Size of a section header (`sizeof (dof_sec_t)`).
    pub const SIZE: u32 = 32;

    /// Typed section type.
    pub fn sec_type(&self) -> Result<DofSecType, UnknownValue> {
        DofSecType::try_from(self.ty)
    }

    /// Whether the section is marked loadable.
    pub const fn is_load(&self) -> bool {
        self.flags & DOF_SECF_LOAD != 0
    }
}

macro_rules! sec_types {
    ($( $variant:ident = $num:literal, $cname:literal, $load:literal; )+) => {
        /// A DOF section type (`DOF_SECT_*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum DofSecType {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), ").")]
                $variant = $num,
            )+
        }

        impl DofSecType {
            /// Every section type, in numeric order.
            pub const ALL: &'static [DofSecType] = &[$(DofSecType::$variant),+];

            /// The C macro name.
            pub const fn c_name(self) -> &'static str {
                match self { $(DofSecType::$variant => $cname,)+ }
            }

            /// Whether sections of this type belong to the loadable image and
            /// therefore must carry [`DOF_SECF_LOAD`] (`DOF_SEC_ISLOADABLE`).
            pub const fn is_loadable(self) -> bool {
                match self { $(DofSecType::$variant => $load,)+ }
            }
        }

        impl TryFrom<u32> for DofSecType {
            type Error = UnknownValue;
            fn try_from(raw: u32) -> Result<Self, UnknownValue> {
                match raw {
                    $($num => Ok(DofSecType::$variant),)+
                    other => Err(UnknownValue(other as u64)),
                }
            }
        }
    };
}

sec_types! {
    None = 0, "DOF_SECT_NONE", false;
    Comments = 1, "DOF_SECT_COMMENTS", false;
    Source = 2, "DOF_SECT_SOURCE", false;
    EcbDesc = 3, "DOF_SECT_ECBDESC", true;
    ProbeDesc = 4, "DOF_SECT_PROBEDESC", true;
    ActDesc = 5, "DOF_SECT_ACTDESC", true;
    DifoHdr = 6, "DOF_SECT_DIFOHDR", true;
    Dif = 7, "DOF_SECT_DIF", true;
    StrTab = 8, "DOF_SECT_STRTAB", true;
    VarTab = 9, "DOF_SECT_VARTAB", true;
    RelTab = 10, "DOF_SECT_RELTAB", true;
    TypTab = 11, "DOF_SECT_TYPTAB", true;
    UrelHdr = 12, "DOF_SECT_URELHDR", true;
    KrelHdr = 13, "DOF_SECT_KRELHDR", true;
    OptDesc = 14, "DOF_SECT_OPTDESC", true;
    Provider = 15, "DOF_SECT_PROVIDER", true;
    Probes = 16, "DOF_SECT_PROBES", true;
    PrArgs = 17, "DOF_SECT_PRARGS", true;
    PrOffs = 18, "DOF_SECT_PROFFS", true;
    IntTab = 19, "DOF_SECT_INTTAB", true;
    Utsname = 20, "DOF_SECT_UTSNAME", false;
    XlTab = 21, "DOF_SECT_XLTAB", true;
    XlMembers = 22, "DOF_SECT_XLMEMBERS", true;
    XlImport = 23, "DOF_SECT_XLIMPORT", true;
    XlExport = 24, "DOF_SECT_XLEXPORT", true;
    PrExport = 25, "DOF_SECT_PREXPORT", true;
    PrenOffs = 26, "DOF_SECT_PRENOFFS", true;
}

impl DofSecType {
    /// For the sections a DIFOHDR may link (DIF, INTTAB, STRTAB, VARTAB):
    /// the exact `(align, entsize)` the kernel requires of them.
    pub const fn difo_subsection_layout(self) -> Option<(u32, u32)> {
        match self {
            DofSecType::Dif => Some((4, 4)),
            DofSecType::IntTab => Some((8, 8)),
            DofSecType::StrTab => Some((1, 0)),
            DofSecType::VarTab => Some((4, core::mem::size_of::<crate::dif::DifVar>() as u32)),
            _ => None,
        }
    }

    /// Section types that only helper (USDT) DOF may contain; the ENABLE
    /// ioctl rejects them.
    pub const fn is_provider_section(self) -> bool {
        matches!(
            self,
            DofSecType::Provider | DofSecType::Probes | DofSecType::PrArgs | DofSecType::PrOffs
        )
    }
}

/// `dof_ecbdesc_t` (section `DOF_SECT_ECBDESC`): one enabling. 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofEcbDesc {
    /// `dofe_probes`: the `PROBEDESC` section.
    pub probes: DofSecIdx,
    /// `dofe_pred`: the predicate's `DIFOHDR` section, or `DOF_SECIDX_NONE`.
    pub pred: DofSecIdx,
    /// `dofe_actions`: the `ACTDESC` section, or `DOF_SECIDX_NONE`.
    pub actions: DofSecIdx,
    /// `dofe_pad`: reserved, zero.
    pub pad: u32,
    /// `dofe_uarg`: opaque consumer value, returned by EPROBE.
    pub uarg: u64,
}
/// C name of [`DofEcbDesc`].
pub type dof_ecbdesc_t = DofEcbDesc;
abi_struct!(DofEcbDesc, size = 24, align = 8, {
    probes @ 0, pred @ 4, actions @ 8, pad @ 12, uarg @ 16,
});

/// `dof_probedesc_t` (section `DOF_SECT_PROBEDESC`): which probes an
/// enabling matches, as string-table offsets. 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofProbeDesc {
    /// `dofp_strtab`: the `STRTAB` section the offsets refer to.
    pub strtab: DofSecIdx,
    /// `dofp_provider`: provider name pattern.
    pub provider: DofStrIdx,
    /// `dofp_mod`: module name pattern.
    pub module: DofStrIdx,
    /// `dofp_func`: function name pattern.
    pub function: DofStrIdx,
    /// `dofp_name`: probe name pattern.
    pub name: DofStrIdx,
    /// `dofp_id`: probe id, or 0 (`DTRACE_IDNONE`) to match by name.
    pub id: u32,
}
/// C name of [`DofProbeDesc`].
pub type dof_probedesc_t = DofProbeDesc;
abi_struct!(DofProbeDesc, size = 24, align = 4, {
    strtab @ 0, provider @ 4, module @ 8, function @ 12, name @ 16, id @ 20,
});

/// `dof_actdesc_t` (section `DOF_SECT_ACTDESC`, an array): one action. 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofActDesc {
    /// `dofa_difo`: the action's `DIFOHDR` section, or `DOF_SECIDX_NONE`.
    pub difo: DofSecIdx,
    /// `dofa_strtab`: string table for a format string, or `DOF_SECIDX_NONE`.
    pub strtab: DofSecIdx,
    /// `dofa_kind`: a `DTRACEACT_*` kind.
    pub kind: u32,
    /// `dofa_ntuple`: number of tuple entries (aggregation keys) that follow.
    pub ntuple: u32,
    /// `dofa_arg`: kind-specific argument (string offset for printf-like
    /// actions, packed parameters for quantizations, frame counts...).
    pub arg: u64,
    /// `dofa_uarg`: opaque consumer value.
    pub uarg: u64,
}
/// C name of [`DofActDesc`].
pub type dof_actdesc_t = DofActDesc;
abi_struct!(DofActDesc, size = 32, align = 8, {
    difo @ 0, strtab @ 4, kind @ 8, ntuple @ 12, arg @ 16, uarg @ 24,
});

/// `dof_difohdr_t` (section `DOF_SECT_DIFOHDR`): a DIFO's return type followed
/// by a variable-length array of section links (DIF, INTTAB, STRTAB, VARTAB).
/// This struct holds the header with its first link, 12 bytes as in C; the
/// number of links is `(section size - 8) / 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofDifoHdr {
    /// `dofd_rtype`: the DIFO's return type.
    pub rtype: DifType,
    /// `dofd_links[1]`: the first section link.
    pub links: [DofSecIdx; 1],
}
/// C name of [`DofDifoHdr`].
pub type dof_difohdr_t = DofDifoHdr;
abi_struct!(DofDifoHdr, size = 12, align = 4, { rtype @ 0, links @ 8 });

impl DofDifoHdr {
    /// Bytes before the link array.
    pub const LINKS_OFFSET: usize = 8;

    /// Number of links in a DIFOHDR section of `size` bytes, or `None` when
    /// the size is not `8 + 4n` with n ≥ 1.
    pub const fn link_count(size: u64) -> Option<u64> {
        if size < 12 || size % 4 != 0 {
            None
        } else {
            Some((size - 8) / 4)
        }
    }
}

/// `dof_relohdr_t` (sections `DOF_SECT_URELHDR`/`KRELHDR`). 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofRelohdr {
    /// `dofr_strtab`: string table for symbol names.
    pub strtab: DofSecIdx,
    /// `dofr_relsec`: the `RELTAB` section.
    pub relsec: DofSecIdx,
    /// `dofr_tgtsec`: the section being relocated.
    pub tgtsec: DofSecIdx,
}
/// C name of [`DofRelohdr`].
pub type dof_relohdr_t = DofRelohdr;
abi_struct!(DofRelohdr, size = 12, align = 4, { strtab @ 0, relsec @ 4, tgtsec @ 8 });

/// `DOF_RELO_NONE`.
pub const DOF_RELO_NONE: u32 = 0;
/// `DOF_RELO_SETX`.
pub const DOF_RELO_SETX: u32 = 1;
/// `DOF_RELO_DOFREL` (FreeBSD).
pub const DOF_RELO_DOFREL: u32 = 2;

/// A relocation kind (`DOF_RELO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DofRelocType {
    /// No-op entry.
    None = DOF_RELO_NONE,
    /// Add the object's load base to the 64-bit word at the target offset.
    Setx = DOF_RELO_SETX,
    /// Add the user address of the relocated location itself (FreeBSD).
    DofRel = DOF_RELO_DOFREL,
}

impl TryFrom<u32> for DofRelocType {
    type Error = UnknownValue;
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        match raw {
            DOF_RELO_NONE => Ok(DofRelocType::None),
            DOF_RELO_SETX => Ok(DofRelocType::Setx),
            DOF_RELO_DOFREL => Ok(DofRelocType::DofRel),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

/// `dof_relodesc_t` (section `DOF_SECT_RELTAB`). 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofRelodesc {
    /// `dofr_name`: symbol name (string offset).
    pub name: DofStrIdx,
    /// `dofr_type`: a `DOF_RELO_*` kind.
    pub ty: u32,
    /// `dofr_offset`: byte offset within the target section.
    pub offset: u64,
    /// `dofr_data`: kind-specific data.
    pub data: u64,
}
/// C name of [`DofRelodesc`].
pub type dof_relodesc_t = DofRelodesc;
abi_struct!(DofRelodesc, size = 24, align = 8, { name @ 0, ty @ 4, offset @ 8, data @ 16 });

/// `dof_optdesc_t` (section `DOF_SECT_OPTDESC`): one option setting. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofOptDesc {
    /// `dofo_option`: a `DTRACEOPT_*` index.
    pub option: u32,
    /// `dofo_strtab`: must be `DOF_SECIDX_NONE` (string options are
    /// handled in userland).
    pub strtab: DofSecIdx,
    /// `dofo_value`: the value; `DTRACEOPT_UNSET` (-2) is rejected.
    pub value: u64,
}
/// C name of [`DofOptDesc`].
pub type dof_optdesc_t = DofOptDesc;
abi_struct!(DofOptDesc, size = 16, align = 8, { option @ 0, strtab @ 4, value @ 8 });

/// `dof_provider_t` (section `DOF_SECT_PROVIDER`): a USDT provider. 44 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofProvider {
    /// `dofpv_strtab`: string table.
    pub strtab: DofSecIdx,
    /// `dofpv_probes`: the `PROBES` section.
    pub probes: DofSecIdx,
    /// `dofpv_prargs`: the `PRARGS` section.
    pub prargs: DofSecIdx,
    /// `dofpv_proffs`: the `PROFFS` section.
    pub proffs: DofSecIdx,
    /// `dofpv_name`: provider name (string offset).
    pub name: DofStrIdx,
    /// `dofpv_provattr`: provider attribute (DOF-packed).
    pub provattr: u32,
    /// `dofpv_modattr`: module attribute.
    pub modattr: u32,
    /// `dofpv_funcattr`: function attribute.
    pub funcattr: u32,
    /// `dofpv_nameattr`: name attribute.
    pub nameattr: u32,
    /// `dofpv_argsattr`: arguments attribute.
    pub argsattr: u32,
    /// `dofpv_prenoffs`: the `PRENOFFS` (is-enabled offsets) section.
    pub prenoffs: DofSecIdx,
}
/// C name of [`DofProvider`].
pub type dof_provider_t = DofProvider;
abi_struct!(DofProvider, size = 44, align = 4, {
    strtab @ 0, probes @ 4, prargs @ 8, proffs @ 12, name @ 16, provattr @ 20,
    modattr @ 24, funcattr @ 28, nameattr @ 32, argsattr @ 36, prenoffs @ 40,
});

/// `dof_probe_t` (section `DOF_SECT_PROBES`): one USDT probe. 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofProbe {
    /// `dofpr_addr`: address of the function (relocated).
    pub addr: u64,
    /// `dofpr_func`: function name (string offset).
    pub func: DofStrIdx,
    /// `dofpr_name`: probe name (string offset).
    pub name: DofStrIdx,
    /// `dofpr_nargv`: native argument type strings (string offset).
    pub nargv: DofStrIdx,
    /// `dofpr_xargv`: translated argument type strings (string offset).
    pub xargv: DofStrIdx,
    /// `dofpr_argidx`: index of the first argument mapping in `PRARGS`.
    pub argidx: u32,
    /// `dofpr_offidx`: index of the first offset in `PROFFS`.
    pub offidx: u32,
    /// `dofpr_nargc`: number of native arguments.
    pub nargc: u8,
    /// `dofpr_xargc`: number of translated arguments.
    pub xargc: u8,
    /// `dofpr_noffs`: number of probe-site offsets.
    pub noffs: u16,
    /// `dofpr_enoffidx`: index of the first is-enabled offset in `PRENOFFS`.
    pub enoffidx: u32,
    /// `dofpr_nenoffs`: number of is-enabled offsets.
    pub nenoffs: u16,
    /// `dofpr_pad1`: reserved.
    pub pad1: u16,
    /// `dofpr_pad2`: reserved.
    pub pad2: u32,
}
/// C name of [`DofProbe`].
pub type dof_probe_t = DofProbe;
abi_struct!(DofProbe, size = 48, align = 8, {
    addr @ 0, func @ 8, name @ 12, nargv @ 16, xargv @ 20, argidx @ 24,
    offidx @ 28, nargc @ 32, xargc @ 33, noffs @ 34, enoffidx @ 36,
    nenoffs @ 40, pad1 @ 42, pad2 @ 44,
});

/// `dof_xlator_t` (sections `DOF_SECT_XLIMPORT`/`XLEXPORT`). 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofXlator {
    /// `dofxl_members`: the `XLMEMBERS` section.
    pub members: DofSecIdx,
    /// `dofxl_strtab`: string table.
    pub strtab: DofSecIdx,
    /// `dofxl_argv`: input type name (string offset).
    pub argv: DofStrIdx,
    /// `dofxl_argc`: number of input arguments.
    pub argc: u32,
    /// `dofxl_type`: output type name (string offset).
    pub ty: DofStrIdx,
    /// `dofxl_attr`: output type attribute (DOF-packed).
    pub attr: u32,
}
/// C name of [`DofXlator`].
pub type dof_xlator_t = DofXlator;
abi_struct!(DofXlator, size = 24, align = 4, {
    members @ 0, strtab @ 4, argv @ 8, argc @ 12, ty @ 16, attr @ 20,
});

/// `dof_xlmember_t` (section `DOF_SECT_XLMEMBERS`). 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofXlMember {
    /// `dofxm_difo`: the member's `DIFOHDR` section.
    pub difo: DofSecIdx,
    /// `dofxm_name`: member name (string offset).
    pub name: DofStrIdx,
    /// `dofxm_type`: member type.
    pub ty: DifType,
}
/// C name of [`DofXlMember`].
pub type dof_xlmember_t = DofXlMember;
abi_struct!(DofXlMember, size = 16, align = 4, { difo @ 0, name @ 4, ty @ 8 });

/// `dof_xlref_t` (section `DOF_SECT_XLTAB`): what an XLATE/XLARG refers to.
/// 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct DofXlRef {
    /// `dofxr_xlator`: the `XLIMPORT` section.
    pub xlator: DofSecIdx,
    /// `dofxr_member`: member index.
    pub member: u32,
    /// `dofxr_argn`: argument index.
    pub argn: u32,
}
/// C name of [`DofXlRef`].
pub type dof_xlref_t = DofXlRef;
abi_struct!(DofXlRef, size = 12, align = 4, { xlator @ 0, member @ 4, argn @ 8 });

/// Size limits and required section layouts the kernel enforces.
pub mod limits {
    /// Default maximum DOF size accepted by ENABLE (`dtrace_dof_maxsize`).
    pub const DOF_MAXSIZE_DEFAULT: u64 = 8 * 1024 * 1024;
    /// Maximum total size of one DIFO (`dtrace_difo_maxsize`).
    pub const DIFO_MAXSIZE: u64 = 256 * 1024;
    /// Maximum actions in one ACTDESC section (`dtrace_actions_max`).
    pub const ACTIONS_MAX: u64 = 16 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn native_header_passes_ident_checks() {
        let h = DofHdr::native(3, 2);
        assert_eq!(h.check_ident(), Ok(()));
        assert_eq!(
            &h.as_bytes()[..10],
            &[0x7f, b'D', b'O', b'F', 2, 1, 2, 2, 3, 2]
        );
        assert_eq!(h.model(), Ok(DofModel::Lp64));
        assert_eq!(h.encoding(), Ok(DofEncoding::Lsb));
        assert_eq!(h.hdrsize, 64);
        assert_eq!(h.secsize, 32);
    }

    #[test]
    fn ident_check_rejections() {
        let good = DofHdr::native(1, 1);
        let with = |i: usize, v: u8| {
            let mut h = good;
            h.ident[i] = v;
            h.check_ident()
        };
        assert_eq!(with(0, 0), Err(DofIdentError::BadMagic));
        assert_eq!(with(DOF_ID_MODEL, 0), Err(DofIdentError::BadModel(0)));
        assert_eq!(with(DOF_ID_MODEL, 1), Ok(()));
        assert_eq!(with(DOF_ID_ENCODING, 2), Err(DofIdentError::BadEncoding(2)));
        assert_eq!(with(DOF_ID_VERSION, 3), Err(DofIdentError::BadVersion(3)));
        assert_eq!(with(DOF_ID_VERSION, 1), Ok(()));
        assert_eq!(
            with(DOF_ID_DIFVERS, 1),
            Err(DofIdentError::BadDifVersion(1))
        );
        assert_eq!(
            with(DOF_ID_DIFIREG, 9),
            Err(DofIdentError::TooManyIntRegs(9))
        );
        assert_eq!(
            with(DOF_ID_DIFTREG, 9),
            Err(DofIdentError::TooManyTupleRegs(9))
        );
        assert_eq!(with(15, 1), Err(DofIdentError::NonZeroPad));
        let mut h = good;
        h.flags = 1;
        assert_eq!(h.check_ident(), Err(DofIdentError::BadFlags(1)));
        h.flags = 0;
        h.secsize = 0;
        assert_eq!(h.check_ident(), Err(DofIdentError::ZeroSecSize));
    }

    #[test]
    fn section_type_table() {
        assert_eq!(DofSecType::ALL.len(), 27);
        for (i, t) in DofSecType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
            assert_eq!(DofSecType::try_from(i as u32), Ok(*t));
        }
        assert!(DofSecType::try_from(27).is_err());
        let unloadable: std::vec::Vec<_> = DofSecType::ALL
            .iter()
            .filter(|t| !t.is_loadable())
            .collect();
        assert_eq!(
            unloadable,
            [
                &DofSecType::None,
                &DofSecType::Comments,
                &DofSecType::Source,
                &DofSecType::Utsname
            ]
        );
        assert!(DofSecType::Probes.is_provider_section());
        assert_eq!(DofSecType::VarTab.difo_subsection_layout(), Some((4, 20)));
        assert_eq!(DofSecType::IntTab.difo_subsection_layout(), Some((8, 8)));
        assert_eq!(DofSecType::TypTab.difo_subsection_layout(), None);
        assert!(!DofSecType::EcbDesc.is_provider_section());
    }

    #[test]
    fn struct_round_trips_through_bytes() {
        let s = DofSec {
            ty: 8,
            align: 1,
            flags: DOF_SECF_LOAD,
            entsize: 0,
            offset: 0x100,
            size: 9,
        };
        let mut buf = [0u8; 40];
        assert!(s.write_at(&mut buf, 8));
        assert_eq!(DofSec::read_at(&buf, 8), Some(s));
        assert_eq!(DofSec::read_at(&buf, 9), None);
        assert_eq!(s.sec_type(), Ok(DofSecType::StrTab));
        assert!(s.is_load());
        let p = DofProbe {
            addr: 1,
            nargc: 2,
            xargc: 3,
            noffs: 4,
            nenoffs: 5,
            ..Default::default()
        };
        let b = p.as_bytes();
        assert_eq!((b[32], b[33], b[34], b[40]), (2, 3, 4, 5));
        assert_eq!(DofProbe::from_bytes(b), Some(p));
    }

    #[test]
    fn difohdr_links_and_relocs() {
        assert_eq!(DofDifoHdr::link_count(12), Some(1));
        assert_eq!(DofDifoHdr::link_count(24), Some(4));
        assert_eq!(DofDifoHdr::link_count(8), None);
        assert_eq!(DofDifoHdr::link_count(14), None);
        assert_eq!(DofRelocType::try_from(2), Ok(DofRelocType::DofRel));
        assert!(DofRelocType::try_from(3).is_err());
        assert!(DofModel::try_from(3).is_err());
        assert!(DofEncoding::try_from(3).is_err());
    }
}
