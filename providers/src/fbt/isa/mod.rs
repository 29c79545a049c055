//! Per-architecture instruction knowledge for fbt: where to put the entry and
//! return breakpoints of a function, what value to write there, and how to
//! emulate the instruction the breakpoint displaced when it traps.
//!
//! Contract:
//! * Decoding ([`Isa::find_entry`], [`Isa::find_returns`]) runs when probes are
//!   provided (not in probe context). It never allocates: sites are handed to a
//!   caller-supplied sink one at a time.
//! * Emulation ([`Isa::emulate`]) runs in probe context (from the breakpoint
//!   trap): it never allocates, never panics, and reports a bad stack access
//!   as [`EmulationError`] instead of faulting.
//!
//! The three implementations are [`x86_64::X86_64`], [`aarch64::Aarch64`] and
//! [`riscv64::Riscv64`]. They are plain code over byte slices and register
//! files, so all three are unit-tested on any host.

pub mod aarch64;
pub mod riscv64;
pub mod x86_64;

/// Whether a patch site is a function's entry or one of its returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKind {
    Entry,
    Return,
}

/// An instruction-sized value in memory: `width` bytes (1, 2 or 4) of `bits`,
/// little-endian (all three architectures store code little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodeValue {
    pub bits: u32,
    pub width: u8,
}

impl CodeValue {
    /// The value as it lies in memory; only the first `width` bytes matter.
    pub fn bytes(&self) -> [u8; 4] {
        self.bits.to_le_bytes()
    }

    /// The first `width` bytes of `bytes()`.
    pub fn as_slice(&self, buf: &mut [u8; 4]) -> usize {
        *buf = self.bytes();
        usize::from(self.width.min(4))
    }

    /// Read `width` bytes at `offset` of `code`, if they are all there.
    pub fn read(code: &[u8], offset: usize, width: u8) -> Option<CodeValue> {
        let end = offset.checked_add(usize::from(width))?;
        let bytes = code.get(offset..end)?;
        let mut le = [0u8; 4];
        le.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(CodeValue {
            bits: u32::from_le_bytes(le),
            width,
        })
    }
}

/// One place in a function where fbt writes a breakpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSite<E> {
    pub kind: SiteKind,
    /// Run-time address of the displaced instruction.
    pub addr: u64,
    /// Offset of the displaced instruction from the function start (return
    /// probes report it as arg0).
    pub offset: u32,
    /// Length in bytes of the displaced instruction.
    pub len: u8,
    /// The bytes the breakpoint replaces (restored on disable).
    pub original: CodeValue,
    /// The breakpoint written on enable.
    pub patch: CodeValue,
    /// What to do instead of the displaced instruction when the breakpoint traps.
    pub emulation: E,
}

/// A stack access made while emulating failed: the address is not writable
/// or readable. The trap handler then leaves the breakpoint to the kernel's
/// normal path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmulationError {
    /// Loading from this address failed.
    Load(u64),
    /// Storing to this address failed.
    Store(u64),
    /// The emulation does not apply (e.g. register index out of range); never
    /// produced for sites this module decoded itself.
    Unsupported,
}

/// Access to the interrupted context's memory (its stack) during emulation.
pub trait StackMemory {
    fn load_u64(&mut self, addr: u64) -> Result<u64, EmulationError>;
    fn store_u64(&mut self, addr: u64, value: u64) -> Result<(), EmulationError>;
}

/// The interrupted context's registers. `R` is the architecture's register
/// name type; the program counter is one of them.
pub trait RegisterFile<R: Copy> {
    fn get(&self, reg: R) -> u64;
    fn set(&mut self, reg: R, value: u64);
}

/// One instruction set's fbt knowledge.
pub trait Isa {
    /// Register names of this architecture (including the program counter).
    type Reg: Copy;
    /// The semantic operation that replaces a displaced instruction.
    type Emulation: Copy + core::fmt::Debug + PartialEq;

    /// Short architecture name as used in target triples.
    const NAME: &'static str;
    /// Artificial frames of fbt probes on this architecture (abi-facts §6.4).
    const AFRAMES: u32;
    /// The program counter register.
    const PC: Self::Reg;
    /// The registers holding function arguments 0..4 at entry.
    const ARG_REGS: [Self::Reg; 5];
    /// The register holding the return value at a return site.
    const RETVAL_REG: Self::Reg;

    /// The entry site of the function whose bytes are `code`, loaded at `addr`,
    /// or `None` if its prologue is not one fbt can instrument.
    fn find_entry(code: &[u8], addr: u64) -> Option<PatchSite<Self::Emulation>>;

    /// Every return site of the function, in address order, handed to `sink`.
    /// Returns how many were found.
    fn find_returns(
        code: &[u8],
        addr: u64,
        sink: &mut dyn FnMut(PatchSite<Self::Emulation>),
    ) -> usize;

    /// Carry out `site`'s displaced instruction on `regs`/`mem`, leaving the
    /// program counter at the instruction that follows it in execution order.
    /// Probe context.
    fn emulate<R: RegisterFile<Self::Reg>, M: StackMemory>(
        site: &PatchSite<Self::Emulation>,
        regs: &mut R,
        mem: &mut M,
    ) -> Result<(), EmulationError>;
}

/// Build a site from its parts; `offset` must fit `code`.
pub(crate) fn make_site<E>(
    kind: SiteKind,
    func_addr: u64,
    offset: usize,
    len: u8,
    original: CodeValue,
    patch: CodeValue,
    emulation: E,
) -> Option<PatchSite<E>> {
    let offset32 = u32::try_from(offset).ok()?;
    Some(PatchSite {
        kind,
        addr: func_addr.wrapping_add(u64::from(offset32)),
        offset: offset32,
        len,
        original,
        patch,
        emulation,
    })
}

/// Whether `target` lies outside the function `[addr, addr + len)`.
pub(crate) fn outside_function(target: u64, addr: u64, len: usize) -> bool {
    let end = addr.wrapping_add(len as u64);
    target < addr || target >= end
}

/// A flat little-endian memory window used by tests and by callers that
/// emulate against a copy of a stack.
#[derive(Debug)]
pub struct SliceMemory<'a> {
    pub base: u64,
    pub bytes: &'a mut [u8],
}

impl StackMemory for SliceMemory<'_> {
    fn load_u64(&mut self, addr: u64) -> Result<u64, EmulationError> {
        let start = usize::try_from(addr.wrapping_sub(self.base))
            .map_err(|_| EmulationError::Load(addr))?;
        let end = start.checked_add(8).ok_or(EmulationError::Load(addr))?;
        let window = self
            .bytes
            .get(start..end)
            .ok_or(EmulationError::Load(addr))?;
        let mut le = [0u8; 8];
        le.copy_from_slice(window);
        Ok(u64::from_le_bytes(le))
    }

    fn store_u64(&mut self, addr: u64, value: u64) -> Result<(), EmulationError> {
        let start = usize::try_from(addr.wrapping_sub(self.base))
            .map_err(|_| EmulationError::Store(addr))?;
        let end = start.checked_add(8).ok_or(EmulationError::Store(addr))?;
        let window = self
            .bytes
            .get_mut(start..end)
            .ok_or(EmulationError::Store(addr))?;
        window.copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
}
