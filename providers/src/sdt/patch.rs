//! SDT tracepoint encodings: the instruction a tracepoint holds while its
//! probe is disabled (a NOP) and while enabled (a direct jump to the probe's
//! out-of-line block), per architecture (abi-facts §6.5).
//!
//! Not probe context (enable/disable only).

/// The architectures rdtrace instruments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    Riscv64,
}

impl Arch {
    /// The architecture this code is compiled for, if it is one of ours.
    pub const fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "riscv64") {
            Some(Arch::Riscv64)
        } else {
            None
        }
    }

    /// Size in bytes of a tracepoint's patch site.
    pub const fn site_len(self) -> usize {
        match self {
            Arch::X86_64 => 5,
            Arch::Aarch64 | Arch::Riscv64 => 4,
        }
    }
}

/// Up to five bytes of instruction, as they lie in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteBytes {
    pub bytes: [u8; 5],
    pub len: u8,
}

impl SiteBytes {
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn word(word: u32) -> SiteBytes {
        let le = word.to_le_bytes();
        SiteBytes {
            bytes: [le[0], le[1], le[2], le[3], 0],
            len: 4,
        }
    }
}

/// Why a tracepoint cannot be enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// The out-of-line block is beyond the jump's reach.
    OutOfRange,
    /// The target is not aligned as the architecture's jumps require.
    Misaligned,
}

/// The disabled form of a tracepoint.
pub fn disabled(arch: Arch) -> SiteBytes {
    match arch {
        Arch::X86_64 => SiteBytes {
            bytes: [0x90; 5],
            len: 5,
        },
        Arch::Aarch64 => SiteBytes::word(0xd503_201f),
        Arch::Riscv64 => SiteBytes::word(0x0000_0013),
    }
}

/// The enabled form of the tracepoint at `site`: a jump to `target`.
pub fn enabled(arch: Arch, site: u64, target: u64) -> Result<SiteBytes, PatchError> {
    match arch {
        Arch::X86_64 => {
            let delta = target.wrapping_sub(site.wrapping_add(5)) as i64;
            let rel = i32::try_from(delta).map_err(|_| PatchError::OutOfRange)?;
            let r = rel.to_le_bytes();
            Ok(SiteBytes {
                bytes: [0xE9, r[0], r[1], r[2], r[3]],
                len: 5,
            })
        }
        Arch::Aarch64 => {
            let delta = target.wrapping_sub(site) as i64;
            if delta % 4 != 0 {
                return Err(PatchError::Misaligned);
            }
            let words = delta / 4;
            if !(-(1 << 25)..(1 << 25)).contains(&words) {
                return Err(PatchError::OutOfRange);
            }
            Ok(SiteBytes::word(0x1400_0000 | (words as u32 & 0x03ff_ffff)))
        }
        Arch::Riscv64 => {
            let delta = target.wrapping_sub(site) as i64;
            if delta % 2 != 0 {
                return Err(PatchError::Misaligned);
            }
            if !(-(1 << 20)..(1 << 20)).contains(&delta) {
                return Err(PatchError::OutOfRange);
            }
            let imm = delta as u32;
            let bit = |hi: u32, lo: u32| (imm >> lo) & ((1 << (hi - lo + 1)) - 1);
            // jal x0: imm[20|10:1|11|19:12] in bits 31|30:21|20|19:12.
            let word = (bit(20, 20) << 31)
                | (bit(10, 1) << 21)
                | (bit(11, 11) << 20)
                | (bit(19, 12) << 12)
                | 0x6f;
            Ok(SiteBytes::word(word))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_jmp_rel32() {
        assert_eq!(disabled(Arch::X86_64).as_slice(), &[0x90; 5]);
        let e = enabled(Arch::X86_64, 0x1000, 0x1105).unwrap();
        assert_eq!(e.as_slice(), &[0xE9, 0x00, 0x01, 0, 0]);
        let back = enabled(Arch::X86_64, 0x2000, 0x1000).unwrap();
        assert_eq!(back.as_slice(), &[0xE9, 0xfb, 0xef, 0xff, 0xff]); // -0x1005
        assert_eq!(
            enabled(Arch::X86_64, 0, 0x1_0000_0000),
            Err(PatchError::OutOfRange)
        );
    }

    #[test]
    fn arm64_b() {
        assert_eq!(
            disabled(Arch::Aarch64).as_slice(),
            &0xd503_201fu32.to_le_bytes()
        );
        // b +0x100 = 0x14000040 ; b -4 = 0x17ffffff
        assert_eq!(
            enabled(Arch::Aarch64, 0x1000, 0x1100).unwrap().as_slice(),
            &0x1400_0040u32.to_le_bytes()
        );
        assert_eq!(
            enabled(Arch::Aarch64, 0x1000, 0xffc).unwrap().as_slice(),
            &0x17ff_ffffu32.to_le_bytes()
        );
        assert_eq!(
            enabled(Arch::Aarch64, 0x1000, 0x1002),
            Err(PatchError::Misaligned)
        );
        assert_eq!(
            enabled(Arch::Aarch64, 0, 1 << 28),
            Err(PatchError::OutOfRange)
        );
    }

    #[test]
    fn riscv_jal_x0() {
        assert_eq!(disabled(Arch::Riscv64).as_slice(), &0x13u32.to_le_bytes());
        // j +8 = 0x0080006f ; j -8 = 0xff9ff06f ; j +0x800 = 0x0010006f|... check by decoding
        assert_eq!(
            enabled(Arch::Riscv64, 0x1000, 0x1008).unwrap().as_slice(),
            &0x0080_006fu32.to_le_bytes()
        );
        assert_eq!(
            enabled(Arch::Riscv64, 0x1008, 0x1000).unwrap().as_slice(),
            &0xff9f_f06fu32.to_le_bytes()
        );
        assert_eq!(
            enabled(Arch::Riscv64, 0, 1 << 20),
            Err(PatchError::OutOfRange)
        );
        assert_eq!(enabled(Arch::Riscv64, 0, 3), Err(PatchError::Misaligned));
    }
}
