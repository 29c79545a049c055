//! Memory access on behalf of D code (probe context).
//!
//! An address D code uses is either inside memory the VM owns — the DIFO's
//! string table, the scratch region (allocated part), static variable
//! storage, dynamic variable chunks — or somewhere else in the kernel. Owned
//! memory is read and written here with bounds checks; every other load goes
//! through the platform's fault-checked access, and every other store is
//! refused with `DTRACEFLT_BADADDR` (D may only write memory the VM owns).
//! Consumers without kernel visibility (`ExecContext::kernel_visible`
//! false) may not read foreign kernel memory at all: `DTRACEFLT_KPRIV`.
//!
//! Faults returned from here carry offset 0; the VM fills in the
//! instruction offset.

use super::abi::FaultCode;
use super::context::ExecContext;
use super::Fault;
use crate::platform::AccessFault;

/// Largest piece read from foreign memory at once; reads never cross a
/// multiple of this, so a string read cannot fault on a page the string
/// does not reach.
const PIECE: u64 = 64;

/// The VM's view of memory during one execution.
pub(crate) struct Machine<'m, 'a> {
    pub ctx: &'m mut ExecContext<'a>,
    pub strtab: &'m [u8],
}

/// Where an owned range starts: (region, offset into it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    Strtab,
    Scratch,
    Globals,
    Locals,
    Dynvars,
}

pub(crate) fn fault(code: FaultCode, addr: u64) -> Fault {
    Fault {
        code,
        addr,
        offset: 0,
    }
}

fn map_access(f: AccessFault, addr: u64) -> Fault {
    match f {
        AccessFault::BadAlignment => fault(FaultCode::BadAlign, addr),
        AccessFault::BadAddress | AccessFault::Toxic => fault(FaultCode::BadAddr, addr),
    }
}

fn within(addr: u64, start: u64, end: u64) -> Option<usize> {
    (addr >= start && addr < end).then(|| (addr - start) as usize)
}

impl<'m, 'a> Machine<'m, 'a> {
    /// Which owned region `addr` lies in, and its offset there.
    fn region(&self, addr: u64) -> Option<(Region, usize, usize)> {
        let st = self.strtab.as_ptr() as u64;
        if let Some(o) = within(addr, st, st + self.strtab.len() as u64) {
            return Some((Region::Strtab, o, self.strtab.len()));
        }
        let sb = self.ctx.scratch.base();
        let su = self.ctx.scratch.used();
        if let Some(o) = within(addr, sb, sb + su as u64) {
            return Some((Region::Scratch, o, su));
        }
        let (gs, ge) = self.ctx.globals.data_range();
        if let Some(o) = within(addr, gs, ge) {
            return Some((Region::Globals, o, (ge - gs) as usize));
        }
        let (ls, le) = self.ctx.locals.data_range();
        if let Some(o) = within(addr, ls, le) {
            return Some((Region::Locals, o, (le - ls) as usize));
        }
        let (ds, de) = self.ctx.dynvars.data_range();
        if let Some(o) = within(addr, ds, de) {
            return Some((Region::Dynvars, o, (de - ds) as usize));
        }
        None
    }

    fn read_owned(&self, region: Region, off: usize, buf: &mut [u8]) -> bool {
        let end = match off.checked_add(buf.len()) {
            Some(e) => e,
            None => return false,
        };
        let src = match region {
            Region::Strtab => self.strtab.get(off..end),
            Region::Scratch => self.ctx.scratch.allocated().get(off..end),
            Region::Globals => return self.ctx.globals.read(off, buf),
            Region::Locals => return self.ctx.locals.read(off, buf),
            Region::Dynvars => return self.ctx.dynvars.read(off, buf),
        };
        match src {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }

    /// Load `buf.len()` bytes from kernel address `addr` (or from user
    /// address space when `user`).
    pub fn read(&self, user: bool, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        if buf.is_empty() {
            return Ok(());
        }
        if !user {
            if let Some((region, off, _)) = self.region(addr) {
                return if self.read_owned(region, off, buf) {
                    Ok(())
                } else {
                    Err(fault(FaultCode::BadAddr, addr))
                };
            }
            if addr.checked_add(buf.len() as u64).is_none() {
                return Err(fault(FaultCode::BadAddr, addr));
            }
            if !self.ctx.kernel_visible {
                // A consumer without kernel visibility may read only the
                // memory the VM owns (dtrace_canload's KPRIV).
                return Err(fault(FaultCode::KPriv, addr));
            }
            self.ctx
                .platform
                .fault_checked_load(addr, buf)
                .map_err(|f| map_access(f, addr))
        } else {
            self.ctx
                .platform
                .fault_checked_user_load(addr, buf)
                .map_err(|f| map_access(f, addr))
        }
    }

    /// Kernel load of `buf.len()` bytes (the common case).
    #[inline]
    pub fn load(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.read(false, addr, buf)
    }

    /// Load of one native-endian integer of `N` bytes.
    #[inline]
    pub fn load_n<const N: usize>(&self, user: bool, addr: u64) -> Result<[u8; N], Fault> {
        let mut b = [0u8; N];
        self.read(user, addr, &mut b)?;
        Ok(b)
    }

    /// Load a u64 from kernel memory.
    pub fn load_u64(&self, addr: u64) -> Result<u64, Fault> {
        Ok(u64::from_ne_bytes(self.load_n::<8>(false, addr)?))
    }

    /// Read up to `max` (≤ 64) bytes starting at `addr` into `buf`, stopping
    /// early at the end of an owned region or at a 64-byte boundary of
    /// foreign memory. Returns the count (0 only when `max` is 0 or an owned
    /// region ends exactly at `addr`).
    pub fn read_piece(
        &self,
        user: bool,
        addr: u64,
        max: u64,
        buf: &mut [u8; 64],
    ) -> Result<usize, Fault> {
        let mut n = max.min(PIECE);
        if !user {
            if let Some((_, off, len)) = self.region(addr) {
                n = n.min((len - off) as u64);
                let piece = buf.get_mut(..n as usize).unwrap_or(&mut []);
                self.read(false, addr, piece)?;
                return Ok(n as usize);
            }
        }
        let to_boundary = PIECE - (addr % PIECE);
        n = n.min(to_boundary);
        let piece = buf.get_mut(..n as usize).unwrap_or(&mut []);
        self.read(user, addr, piece)?;
        Ok(n as usize)
    }

    /// Length of the NUL-terminated string at `addr`, at most `limit`.
    pub fn strlen(&self, user: bool, addr: u64, limit: u64) -> Result<u64, Fault> {
        let mut len: u64 = 0;
        let mut buf = [0u8; 64];
        while len < limit {
            let n = self.read_piece(user, addr.wrapping_add(len), limit - len, &mut buf)?;
            if n == 0 {
                return Ok(len);
            }
            if let Some(pos) = buf.iter().take(n).position(|&b| b == 0) {
                return Ok(len + pos as u64);
            }
            len += n as u64;
        }
        Ok(limit)
    }

    /// One byte of a string at `addr + index` (no bounds beyond the access check).
    pub fn byte(&self, addr: u64) -> Result<u8, Fault> {
        Ok(self.load_n::<1>(false, addr)?[0])
    }

    // ---- stores -----------------------------------------------------------

    /// Store `bytes` at `addr`, which must be owned writable memory.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Fault> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Some((region, off, _)) = self.region(addr) else {
            return Err(fault(FaultCode::BadAddr, addr));
        };
        let Some(end) = off.checked_add(bytes.len()) else {
            return Err(fault(FaultCode::BadAddr, addr));
        };
        let dst = match region {
            Region::Strtab => None,
            Region::Scratch => self.ctx.scratch.allocated_mut().get_mut(off..end),
            Region::Globals => {
                return if self.ctx.globals.write(off, bytes) {
                    Ok(())
                } else {
                    Err(fault(FaultCode::BadAddr, addr))
                }
            }
            Region::Locals => {
                return if self.ctx.locals.write(off, bytes) {
                    Ok(())
                } else {
                    Err(fault(FaultCode::BadAddr, addr))
                }
            }
            Region::Dynvars => {
                return if self.ctx.dynvars.write(off, bytes) {
                    Ok(())
                } else {
                    Err(fault(FaultCode::BadAddr, addr))
                }
            }
        };
        match dst {
            Some(d) => {
                d.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(fault(FaultCode::BadAddr, addr)),
        }
    }

    /// Whether `[addr, addr+len)` is writable owned memory.
    pub fn can_store(&self, addr: u64, len: u64) -> bool {
        match self.region(addr) {
            Some((Region::Strtab, _, _)) | None => len == 0,
            Some((_, off, rlen)) => (off as u64)
                .checked_add(len)
                .is_some_and(|e| e <= rlen as u64),
        }
    }

    /// Copy `len` bytes from `src` (any readable memory) to `dst` (owned).
    pub fn copy(&mut self, src: u64, dst: u64, len: u64) -> Result<(), Fault> {
        if !self.can_store(dst, len) {
            return Err(fault(FaultCode::BadAddr, dst));
        }
        let mut done = 0u64;
        let mut buf = [0u8; 64];
        while done < len {
            let n = self.read_piece(false, src.wrapping_add(done), len - done, &mut buf)?;
            if n == 0 {
                return Err(fault(FaultCode::BadAddr, src.wrapping_add(done)));
            }
            let piece = buf.get(..n).unwrap_or(&[]);
            self.write(dst.wrapping_add(done), piece)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Copy the string at `src` into owned memory at `dst` with room for
    /// `size` bytes: at most `size - 1` characters, always NUL-terminated.
    pub fn copy_string(&mut self, user: bool, src: u64, dst: u64, size: u64) -> Result<(), Fault> {
        if size == 0 {
            return Ok(());
        }
        if !self.can_store(dst, size) {
            return Err(fault(FaultCode::BadAddr, dst));
        }
        let mut done = 0u64;
        let mut buf = [0u8; 64];
        let limit = size - 1;
        while done < limit {
            let n = self.read_piece(user, src.wrapping_add(done), limit - done, &mut buf)?;
            if n == 0 {
                break;
            }
            let piece = buf.get(..n).unwrap_or(&[]);
            let stop = piece.iter().position(|&b| b == 0);
            let take = stop.unwrap_or(n);
            self.write(dst.wrapping_add(done), piece.get(..take).unwrap_or(&[]))?;
            done += take as u64;
            if stop.is_some() {
                break;
            }
        }
        self.write(dst.wrapping_add(done), &[0])
    }

    // ---- scratch ------------------------------------------------------------

    /// Allocate `size` zeroed scratch bytes; NOSCRATCH when exhausted.
    pub fn scratch_alloc(&mut self, size: u64) -> Result<u64, Fault> {
        match self.ctx.scratch.alloc(size) {
            Some(off) => Ok(self.ctx.scratch.base() + off as u64),
            None => Err(fault(FaultCode::NoScratch, 0)),
        }
    }

    /// Copy `bytes` into fresh scratch as a NUL-terminated string truncated
    /// to `strsize`; returns its address.
    pub fn scratch_string(&mut self, bytes: &[u8]) -> Result<u64, Fault> {
        let strsize = self.ctx.strsize.max(1);
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()) as u64;
        let len = len.min(strsize - 1);
        let addr = self.scratch_alloc(len + 1)?;
        self.write(addr, bytes.get(..len as usize).unwrap_or(&[]))?;
        Ok(addr)
    }

    /// Scratch string builder: reserve `strsize` bytes to be filled with
    /// [`StrBuilder::push`].
    pub fn builder(&mut self) -> Result<StrBuilder, Fault> {
        let size = self.ctx.strsize.max(1);
        let start_off = self.ctx.scratch.used();
        let addr = self.scratch_alloc(size)?;
        Ok(StrBuilder {
            addr,
            len: 0,
            cap: size - 1,
            start_off,
        })
    }
}

/// A string being built in scratch (see [`Machine::builder`]).
pub(crate) struct StrBuilder {
    pub addr: u64,
    pub len: u64,
    /// Characters that fit (strsize − 1).
    pub cap: u64,
    start_off: usize,
}

impl StrBuilder {
    /// Append one byte; false (and nothing written) when full.
    pub fn push(&mut self, m: &mut Machine<'_, '_>, b: u8) -> Result<bool, Fault> {
        if self.len >= self.cap {
            return Ok(false);
        }
        m.write(self.addr + self.len, &[b])?;
        self.len += 1;
        Ok(true)
    }

    /// Append the string at `src` (up to `max` bytes or its NUL).
    pub fn push_str(&mut self, m: &mut Machine<'_, '_>, src: u64, max: u64) -> Result<(), Fault> {
        let mut done = 0u64;
        let mut buf = [0u8; 64];
        while done < max && self.len < self.cap {
            let n = m.read_piece(false, src.wrapping_add(done), max - done, &mut buf)?;
            if n == 0 {
                break;
            }
            let piece = buf.get(..n).unwrap_or(&[]);
            for &b in piece {
                if b == 0 || !self.push(m, b)? {
                    return Ok(());
                }
            }
            done += n as u64;
        }
        Ok(())
    }

    /// NUL-terminate (the reserved area is zeroed already) and give back the
    /// unused tail of the reservation. Returns the string's address.
    pub fn finish(self, m: &mut Machine<'_, '_>) -> u64 {
        let end = (self.addr - m.ctx.scratch.base()) as usize + self.len as usize + 1;
        if end > self.start_off {
            m.ctx.scratch.shrink_to(end);
        }
        self.addr
    }
}
