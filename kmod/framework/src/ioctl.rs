//! The single `DTRACEIOC_*` entry point: command word + the `_IOC_SIZE`
//! argument bytes (already copied in by the cdev layer) + caller identity.
//! Pointer-to-pointer arguments (BUFSNAP, AGGSNAP, AGGDESC, EPROBE, DOFGET,
//! ENABLE's DOF) are followed with the platform's copyin/copyout. Each
//! refusal returns the errno FreeBSD returns.
//!
//! Probe context: no.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::abi::*;
use crate::bytes::*;
use crate::consumer;
use crate::dof;
use crate::ecb;
use crate::glob;
use crate::platform::{Errno, ThreadIdentity};
use crate::provider::{ArgDesc, ProbeDescription};
use crate::registry::{Framework, Probe};
use crate::state::ConsumerState;

fn need(arg: &[u8], n: usize) -> Result<(), Errno> {
    if arg.len() < n {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

fn field(arg: &[u8], off: usize, len: usize) -> Result<&str, Errno> {
    let f = arg.get(off..off + len).ok_or(Errno::EINVAL)?;
    // FreeBSD forces the last byte to NUL.
    let f = f.get(..len - 1).unwrap_or(f);
    c_str_field(f).ok_or(Errno::EINVAL)
}

fn fill_probedesc(arg: &mut [u8], p: &Probe) {
    put_u32(arg, PD_ID, p.id);
    if let Some(f) = arg.get_mut(PD_PROVIDER..PD_PROVIDER + DTRACE_PROVNAMELEN) {
        set_c_str_field(f, &p.provider().name);
    }
    if let Some(f) = arg.get_mut(PD_MOD..PD_MOD + DTRACE_MODNAMELEN) {
        set_c_str_field(f, &p.module);
    }
    if let Some(f) = arg.get_mut(PD_FUNC..PD_FUNC + DTRACE_FUNCNAMELEN) {
        set_c_str_field(f, &p.function);
    }
    if let Some(f) = arg.get_mut(PD_NAME..PD_NAME + DTRACE_NAMELEN) {
        set_c_str_field(f, &p.name);
    }
}

/// Dispatches one consumer ioctl.
pub fn consumer_ioctl(
    fw: &Framework,
    state: &ConsumerState,
    cmd: u32,
    arg: &mut [u8],
    _caller: &ThreadIdentity,
) -> Result<(), Errno> {
    let size = ioc_size(cmd);
    match cmd {
        DTRACEIOC_PROVIDER | DTRACEIOC_PROBES | DTRACEIOC_BUFSNAP | DTRACEIOC_PROBEMATCH
        | DTRACEIOC_ENABLE | DTRACEIOC_AGGSNAP | DTRACEIOC_EPROBE | DTRACEIOC_PROBEARG
        | DTRACEIOC_CONF | DTRACEIOC_STATUS | DTRACEIOC_GO | DTRACEIOC_STOP | DTRACEIOC_AGGDESC
        | DTRACEIOC_FORMAT | DTRACEIOC_DOFGET | DTRACEIOC_REPLICATE => need(arg, size)?,
        _ => return Err(Errno::ENOTTY),
    }
    match cmd {
        DTRACEIOC_PROVIDER => provider(fw, arg),
        DTRACEIOC_PROBES | DTRACEIOC_PROBEMATCH => probes(fw, arg, cmd == DTRACEIOC_PROBEMATCH),
        DTRACEIOC_PROBEARG => probearg(fw, arg),
        DTRACEIOC_CONF => {
            arg.fill(0);
            put_u32(arg, 0, u32::from(DIF_VERSION));
            put_u32(arg, 4, u32::from(DIF_DIR_NREGS));
            put_u32(arg, 8, u32::from(DIF_DTR_NREGS));
            put_u32(arg, 12, 2);
            Ok(())
        }
        DTRACEIOC_STATUS => status(fw, state, arg),
        DTRACEIOC_GO => {
            let cpu = consumer::go(fw, state)?;
            put_i32(arg, 0, cpu);
            Ok(())
        }
        DTRACEIOC_STOP => {
            let cpu = consumer::stop(fw, state)?;
            put_i32(arg, 0, cpu);
            Ok(())
        }
        DTRACEIOC_ENABLE => enable(fw, state, arg),
        DTRACEIOC_EPROBE => eprobe(fw, state, arg),
        DTRACEIOC_AGGDESC => aggdesc(fw, state, arg),
        DTRACEIOC_FORMAT => format(fw, state, arg),
        DTRACEIOC_BUFSNAP | DTRACEIOC_AGGSNAP => snap(fw, state, arg, cmd == DTRACEIOC_AGGSNAP),
        DTRACEIOC_DOFGET => dofget(fw, state, arg),
        DTRACEIOC_REPLICATE => replicate(fw, state, arg),
        _ => Err(Errno::ENOTTY),
    }
}

fn provider(fw: &Framework, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, PROVIDERDESC_SIZE)?;
    let name = String::from(field(arg, 0, DTRACE_PROVNAMELEN)?);
    let core = fw.lock.lock();
    let prov = if name.is_empty() {
        let id = fw.dtrace_provider.load(Ordering::Acquire);
        // SAFETY: the dtrace provider lives as long as the framework.
        core.providers
            .iter()
            .find(|&&p| p as usize == id)
            .map(|&p| unsafe { &*p })
    } else {
        fw.provider_by_name(&core, &name)
    }
    .ok_or(Errno::ESRCH)?;
    put_bytes(arg, 64, &prov.attr.to_bytes());
    put_u8(arg, 79, 0);
    put_u32(arg, 80, prov.privilege);
    put_u32(arg, 84, prov.uid);
    put_u32(arg, 88, prov.zoneid);
    Ok(())
}

fn put_u8(b: &mut [u8], off: usize, v: u8) {
    put_bytes(b, off, &[v]);
}

fn probes(fw: &Framework, arg: &mut [u8], is_match: bool) -> Result<(), Errno> {
    need(arg, PROBEDESC_SIZE)?;
    let id = get_u32(arg, PD_ID).unwrap_or(0);
    let prov = String::from(field(arg, PD_PROVIDER, DTRACE_PROVNAMELEN)?);
    let module = String::from(field(arg, PD_MOD, DTRACE_MODNAMELEN)?);
    let func = String::from(field(arg, PD_FUNC, DTRACE_FUNCNAMELEN)?);
    let name = String::from(field(arg, PD_NAME, DTRACE_NAMELEN)?);
    let desc = ProbeDescription {
        id,
        provider: &prov,
        module: &module,
        function: &func,
        name: &name,
    };
    if is_match
        && ![&prov, &module, &func, &name]
            .iter()
            .all(|p| glob::is_valid(p))
    {
        return Err(Errno::EINVAL);
    }
    if id == 0 {
        fw.provide_all(if is_match { Some(&desc) } else { None });
    }
    let core = fw.lock.lock();
    let found = fw.probe_at_or_after(&core, id.max(1), |p| {
        !p.provider().defunct.load(Ordering::Acquire) && (!is_match || p.matches(&desc))
    });
    match found {
        Some(p) => {
            fill_probedesc(arg, p);
            Ok(())
        }
        None => Err(Errno::ESRCH),
    }
}

fn probearg(fw: &Framework, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, ARGDESC_SIZE)?;
    let id = get_u32(arg, 0).unwrap_or(0);
    let ndx = get_i32(arg, 4).unwrap_or(-1);
    if id == 0 || ndx == -1 {
        return Err(Errno::EINVAL);
    }
    let core = fw.lock.lock();
    let p = fw.probe_by_id(id).ok_or(Errno::EINVAL)?;
    let mut d = ArgDesc::new(ndx);
    let provided = p.provider().ops.getargdesc(p.id, p.parg, &mut d);
    drop(core);
    if !provided {
        d.ndx = -1;
    }
    put_i32(arg, 4, d.ndx);
    put_i32(arg, 8, d.mapping);
    put_bytes(arg, 12, &d.native);
    put_bytes(arg, 140, &d.xlate);
    Ok(())
}

fn status(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, STATUS_SIZE)?;
    let _core = fw.lock.lock();
    let a = state.activity();
    if a == ACTIVITY_INACTIVE {
        return Err(Errno::ENOENT);
    }
    let now = fw.platform.monotonic_ns();
    state.laststatus.store(now, Ordering::Relaxed);
    arg.fill(0);
    let mut errors = state.errors.load(Ordering::Relaxed);
    let mut filled = 0u64;
    let mut specdrops = 0u64;
    let (mut dd, mut ddr, mut ddd) = (0, 0, 0);
    if let Some(run) = state.run() {
        for b in &run.bufs {
            errors += u64::from(b.errors.load(Ordering::Relaxed));
            if b.is_full() {
                filled += 1;
            }
        }
        // FreeBSD reports the drops of committed speculative data only.
        for s in &run.specs {
            specdrops += s.drops();
        }
        dd = run.dynvars.drops();
        ddr = run.dynvars.drops_rinsing();
        ddd = run.dynvars.drops_dirty();
    }
    let vals = [
        dd,
        ddr,
        ddd,
        specdrops,
        state.specdrops_busy.load(Ordering::Relaxed),
        state.specdrops_unavail.load(Ordering::Relaxed),
        errors,
        filled,
        state.stkstroverflows.load(Ordering::Relaxed),
        state.dblerrors.load(Ordering::Relaxed),
    ];
    for (i, v) in vals.iter().enumerate() {
        put_u64(arg, i * 8, *v);
    }
    put_u8(arg, 80, u8::from(a == ACTIVITY_KILLED));
    put_u8(arg, 81, u8::from(a == ACTIVITY_DRAINING));
    Ok(())
}

/// Copies in a whole DOF from user address `uaddr` (`dtrace_dof_copyin`).
/// `dtrace_dof_copyin`: the 64-byte header first (unreadable: EFAULT), then
/// the load size checks (`>= dof_maxsize`: E2BIG, `< 64`: EINVAL), then the
/// whole image (unreadable, or its `loadsz` changed under us: EFAULT).
/// The helper device returns this errno; ENABLE answers EINVAL whatever it is,
/// as FreeBSD's `DTRACEIOC_ENABLE` does.
fn dof_copyin(fw: &Framework, uaddr: u64) -> Result<Vec<u8>, (Errno, String)> {
    let mut hdr = [0u8; DOF_HDR_SIZE];
    fw.platform
        .copyin(uaddr, &mut hdr)
        .map_err(|_| (Errno::EFAULT, String::from("failed to copyin DOF header")))?;
    let loadsz = dof::header_loadsz(&hdr).map_err(|(e, m)| (e, m.0))?;
    let mut v = Vec::new();
    v.try_reserve_exact(loadsz)
        .map_err(|_| (Errno::ENOMEM, String::from("DOF too large")))?;
    v.resize(loadsz, 0);
    fw.platform
        .copyin(uaddr, &mut v)
        .map_err(|_| (Errno::EFAULT, String::from("failed to copyin DOF")))?;
    if get_u64(&v, 40) != Some(loadsz as u64) {
        return Err((
            Errno::EFAULT,
            String::from("DOF load size changed during copyin"),
        ));
    }
    Ok(v)
}

fn enable(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, ENABLE_IO_SIZE)?;
    let dofp = get_u64(arg, 0).unwrap_or(0);
    if dofp == 0 {
        // Re-match every retained enabling against newly created probes.
        fw.provide_all(None);
        let core = fw.lock.lock();
        for &s in core.states.iter() {
            // SAFETY: states in the list are live under `fw.lock`.
            let st = unsafe { &*s };
            let mut inner = st.inner.lock();
            let retained = core::mem::take(&mut inner.retained);
            let mut kept = Vec::new();
            for (d, since) in retained {
                let _ = consumer::match_desc(fw, &core, st, &mut inner, &d, since);
                kept.push((d, core.probegen));
            }
            inner.retained = kept;
        }
        return Ok(());
    }
    // FreeBSD's ENABLE discards dtrace_dof_copyin's errno (EFAULT, E2BIG)
    // and answers EINVAL for every DOF it could not copy in.
    let mut image = match dof_copyin(fw, dofp) {
        Ok(v) => v,
        Err((_, msg)) => {
            let mut inner = state.inner.lock();
            fw.platform
                .log(&format!("dtrace: failed to copy in DOF: {msg}"));
            inner.last_error = msg;
            return Err(Errno::EINVAL);
        }
    };
    if state.activity() != ACTIVITY_INACTIVE {
        return Err(Errno::EBUSY);
    }
    let strsize = state.opt(DTRACEOPT_STRSIZE).max(1) as u64;
    let enab = match dof::load(&mut image, true, 0, 0, strsize) {
        Ok(e) => e,
        Err(e) => {
            fw.platform.log(&format!("dtrace: rejected DOF: {}", e.0));
            state.inner.lock().last_error = e.0;
            return Err(Errno::EINVAL);
        }
    };
    for &(o, v) in &enab.options {
        if let Err(e) = consumer::set_option(fw, state, o, v as i64) {
            state.inner.lock().last_error = format!("rejected option {o} = {}", v as i64);
            return Err(e);
        }
    }
    for d in &enab.ecbs {
        let pd = ProbeDescription {
            id: 0,
            provider: &d.probe.provider,
            module: &d.probe.module,
            function: &d.probe.function,
            name: &d.probe.name,
        };
        fw.provide_all(Some(&pd));
    }
    let core = fw.lock.lock();
    let mut inner = state.inner.lock();
    if state.activity() != ACTIVITY_INACTIVE {
        return Err(Errno::EBUSY);
    }
    let mut n = 0usize;
    for d in &enab.ecbs {
        match consumer::match_desc(fw, &core, state, &mut inner, d, 0) {
            Ok(k) => n += k,
            Err(e) => {
                inner.last_error = format!(
                    "could not enable {}:{}:{}:{}",
                    d.probe.provider, d.probe.module, d.probe.function, d.probe.name
                );
                return Err(e);
            }
        }
    }
    if inner.retained.len() + enab.ecbs.len() > RETAIN_MAX {
        return Err(Errno::ENOSPC);
    }
    for d in enab.ecbs {
        inner.retained.push((d, core.probegen));
    }
    inner.last_error.clear();
    put_i32(arg, 8, i32::try_from(n).unwrap_or(i32::MAX));
    Ok(())
}

fn eprobe(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, 8)?;
    let uaddr = get_u64(arg, 0).unwrap_or(0);
    let mut hdr = [0u8; EPROBEDESC_HDR];
    fw.platform
        .copyin(uaddr, &mut hdr)
        .map_err(|_| Errno::EFAULT)?;
    let epid = get_u32(&hdr, 0).unwrap_or(0);
    let cap = get_i32(&hdr, 20).unwrap_or(0).max(0) as usize;
    let _core = fw.lock.lock();
    let inner = state.inner.lock();
    let e = epid
        .checked_sub(1)
        .and_then(|i| inner.ecbs.get(i as usize))
        // SAFETY: ECBs in the table are live (null = destroyed).
        .and_then(|&e| unsafe { e.as_ref() })
        .ok_or(Errno::EINVAL)?;
    let recs: Vec<_> = ecb::eprobe_recs(e).copied().collect();
    let n = recs.len().min(cap);
    let mut out = vec![0u8; EPROBEDESC_HDR + n * RECDESC_SIZE];
    put_u32(&mut out, 0, epid);
    put_u32(&mut out, 4, e.probe_id);
    put_u64(&mut out, 8, e.uarg);
    put_u32(&mut out, 16, e.size);
    put_i32(&mut out, 20, recs.len() as i32);
    for (i, r) in recs.iter().take(n).enumerate() {
        if let Some(slot) =
            out.get_mut(EPROBEDESC_HDR + i * RECDESC_SIZE..EPROBEDESC_HDR + (i + 1) * RECDESC_SIZE)
        {
            r.encode(slot);
        }
    }
    fw.platform.copyout(&out, uaddr).map_err(|_| Errno::EFAULT)
}

fn aggdesc(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, 8)?;
    let uaddr = get_u64(arg, 0).unwrap_or(0);
    let mut hdr = [0u8; AGGDESC_HDR];
    fw.platform
        .copyin(uaddr, &mut hdr)
        .map_err(|_| Errno::EFAULT)?;
    let aggid = get_u32(&hdr, 20).unwrap_or(0);
    let cap = get_i32(&hdr, 32).unwrap_or(0).max(0) as usize;
    let _core = fw.lock.lock();
    let inner = state.inner.lock();
    let &(epid, act_idx) = aggid
        .checked_sub(1)
        .and_then(|i| inner.aggs.get(i as usize))
        .ok_or(Errno::EINVAL)?;
    let e = epid
        .checked_sub(1)
        .and_then(|i| inner.ecbs.get(i as usize))
        // SAFETY: as in `eprobe`.
        .and_then(|&e| unsafe { e.as_ref() })
        .ok_or(Errno::EINVAL)?;
    let a = e.actions.get(act_idx).ok_or(Errno::EINVAL)?;
    let g = a.agg.ok_or(Errno::EINVAL)?;
    let base = g.base;
    let mut recs = Vec::new();
    for x in e.actions.iter().skip(g.first).take(act_idx + 1 - g.first) {
        if x.rec.size == 0 {
            continue;
        }
        let mut r = x.rec;
        r.offset -= base;
        recs.push(r);
    }
    let n = recs.len().min(cap);
    let mut out = vec![0u8; AGGDESC_HDR + n * RECDESC_SIZE];
    if let Some(h) = out.get_mut(..20) {
        h.copy_from_slice(hdr.get(..20).unwrap_or(&[0; 20]));
    }
    put_u32(&mut out, 20, aggid);
    put_u32(&mut out, 24, epid);
    put_u32(&mut out, 28, a.rec.offset + a.rec.size - base);
    put_i32(&mut out, 32, recs.len() as i32);
    for (i, r) in recs.iter().take(n).enumerate() {
        if let Some(slot) =
            out.get_mut(AGGDESC_HDR + i * RECDESC_SIZE..AGGDESC_HDR + (i + 1) * RECDESC_SIZE)
        {
            r.encode(slot);
        }
    }
    fw.platform.copyout(&out, uaddr).map_err(|_| Errno::EFAULT)
}

fn format(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, FMTDESC_SIZE)?;
    let uaddr = get_u64(arg, 0).unwrap_or(0);
    let length = get_i32(arg, 8).unwrap_or(0);
    let fmt = get_u16(arg, 12).unwrap_or(0);
    let _core = fw.lock.lock();
    let inner = state.inner.lock();
    let s = (fmt as usize)
        .checked_sub(1)
        .and_then(|i| inner.formats.get(i))
        .filter(|s| !s.is_empty())
        .ok_or(Errno::EINVAL)?;
    let len = s
        .iter()
        .position(|&c| c == 0)
        .map_or(s.len() + 1, |p| p + 1);
    if (len as i64) > i64::from(length) {
        put_i32(arg, 8, len as i32);
        return Ok(());
    }
    let mut out = s.get(..len.min(s.len())).unwrap_or(&[]).to_vec();
    out.resize(len, 0);
    fw.platform.copyout(&out, uaddr).map_err(|_| Errno::EINVAL)
}

fn switch_principal(arg: usize) {
    let Some(fw) = crate::registry::get() else {
        return;
    };
    // SAFETY: `snap` passes a live buffer of a live state and waits for us.
    let b = unsafe { &*(arg as *const crate::buffer::CpuBuffer) };
    // SAFETY: cross-call on the buffer's CPU.
    unsafe { b.switch(fw.platform.monotonic_ns()) };
}

fn switch_agg(arg: usize) {
    let Some(fw) = crate::registry::get() else {
        return;
    };
    // SAFETY: as for `switch_principal`.
    let b = unsafe { &*(arg as *const crate::agg::AggBuffer) };
    // SAFETY: cross-call on the buffer's CPU.
    unsafe { b.switch(fw.platform.monotonic_ns()) };
}

fn snap(fw: &Framework, state: &ConsumerState, arg: &mut [u8], agg: bool) -> Result<(), Errno> {
    need(arg, 8)?;
    let uaddr = get_u64(arg, 0).unwrap_or(0);
    let mut desc = [0u8; BUFDESC_SIZE];
    fw.platform
        .copyin(uaddr, &mut desc)
        .map_err(|_| Errno::EFAULT)?;
    let cpu = get_u32(&desc, 8).unwrap_or(u32::MAX) as usize;
    let data = get_u64(&desc, 24).unwrap_or(0);
    if cpu >= fw.ncpu {
        return Err(Errno::ENOENT);
    }
    let _core = fw.lock.lock();
    let run = state.run().ok_or(Errno::ENOENT)?;
    let (size, drops, errors, oldest, ts) = if agg {
        let b = run.aggbufs.get(cpu).ok_or(Errno::ENOENT)?;
        fw.platform
            .xcall(Some(cpu), switch_agg, b as *const _ as usize);
        // SAFETY: the switch completed; we hold the framework lock.
        let (d, drops, ts) = unsafe { b.frozen() }.ok_or(Errno::ENOENT)?;
        fw.platform.copyout(d, data).map_err(|_| Errno::EFAULT)?;
        (d.len() as u64, drops, 0u32, 0u64, ts)
    } else {
        let b = run.bufs.get(cpu).ok_or(Errno::ENOENT)?;
        if b.size() == 0 {
            return Err(Errno::ENOENT);
        }
        if b.flags.load(Ordering::Relaxed) & (DTRACEBUF_RING | DTRACEBUF_FILL) != 0 {
            if state.activity() != ACTIVITY_STOPPED {
                return Err(Errno::EBUSY);
            }
            // SAFETY: the state is stopped: no probe context records into it.
            let (d, oldest) = unsafe { b.drain() };
            fw.platform.copyout(d, data).map_err(|_| Errno::EFAULT)?;
            let consumed_empty = d.is_empty();
            (
                d.len() as u64,
                if consumed_empty {
                    0
                } else {
                    b.drops.load(Ordering::Relaxed)
                },
                if consumed_empty {
                    0
                } else {
                    b.errors.load(Ordering::Relaxed)
                },
                oldest as u64,
                fw.platform.monotonic_ns(),
            )
        } else {
            fw.platform
                .xcall(Some(cpu), switch_principal, b as *const _ as usize);
            // SAFETY: the switch completed; we hold the framework lock.
            let (d, drops, errors, ts) = unsafe { b.frozen() }.ok_or(Errno::ENOENT)?;
            state.errors.fetch_add(u64::from(errors), Ordering::Relaxed);
            fw.platform.copyout(d, data).map_err(|_| Errno::EFAULT)?;
            (d.len() as u64, drops, errors, 0, ts)
        }
    };
    put_u64(&mut desc, 0, size);
    put_u32(&mut desc, 12, errors);
    put_u64(&mut desc, 16, drops);
    put_u64(&mut desc, 32, oldest);
    put_u64(&mut desc, 40, ts);
    fw.platform.copyout(&desc, uaddr).map_err(|_| Errno::EFAULT)
}

/// The DOF DOFGET returns: a header and one OPTDESC section with all options.
pub fn options_dof(state: &ConsumerState) -> Vec<u8> {
    let len = DOF_HDR_SIZE + DOF_SEC_SIZE + 16 * DTRACEOPT_MAX;
    let mut d = vec![0u8; len];
    put_bytes(
        &mut d,
        0,
        &[
            0x7f,
            b'D',
            b'O',
            b'F',
            DOF_MODEL_LP64,
            DOF_ENCODE_NATIVE,
            DOF_VERSION_2,
            DIF_VERSION,
            DIF_DIR_NREGS,
            DIF_DTR_NREGS,
        ],
    );
    put_u32(&mut d, 20, DOF_HDR_SIZE as u32);
    put_u32(&mut d, 24, DOF_SEC_SIZE as u32);
    put_u32(&mut d, 28, 1);
    put_u64(&mut d, 32, DOF_HDR_SIZE as u64);
    put_u64(&mut d, 40, len as u64);
    put_u64(&mut d, 48, len as u64);
    let s = DOF_HDR_SIZE;
    put_u32(&mut d, s, DOF_SECT_OPTDESC);
    put_u32(&mut d, s + 4, 8);
    put_u32(&mut d, s + 8, DOF_SECF_LOAD);
    put_u32(&mut d, s + 12, 16);
    put_u64(&mut d, s + 16, (DOF_HDR_SIZE + DOF_SEC_SIZE) as u64);
    put_u64(&mut d, s + 24, (16 * DTRACEOPT_MAX) as u64);
    for i in 0..DTRACEOPT_MAX {
        let o = DOF_HDR_SIZE + DOF_SEC_SIZE + 16 * i;
        put_u32(&mut d, o, i as u32);
        put_u32(&mut d, o + 4, DOF_SECIDX_NONE);
        put_u64(&mut d, o + 8, state.opt(i) as u64);
    }
    d
}

fn dofget(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, 8)?;
    let uaddr = get_u64(arg, 0).unwrap_or(0);
    let mut hdr = [0u8; DOF_HDR_SIZE];
    fw.platform
        .copyin(uaddr, &mut hdr)
        .map_err(|_| Errno::EFAULT)?;
    let want = get_u64(&hdr, 40).unwrap_or(0);
    let d = options_dof(state);
    let n = (want.min(d.len() as u64)) as usize;
    fw.platform
        .copyout(d.get(..n).unwrap_or(&[]), uaddr)
        .map_err(|_| Errno::EFAULT)
}

fn replicate(fw: &Framework, state: &ConsumerState, arg: &mut [u8]) -> Result<(), Errno> {
    need(arg, REPLDESC_SIZE)?;
    let m = |base: usize| -> Result<crate::dof::ProbeSpec, Errno> {
        Ok(crate::dof::ProbeSpec {
            provider: field(arg, base + PD_PROVIDER, DTRACE_PROVNAMELEN)?.into(),
            module: field(arg, base + PD_MOD, DTRACE_MODNAMELEN)?.into(),
            function: field(arg, base + PD_FUNC, DTRACE_FUNCNAMELEN)?.into(),
            name: field(arg, base + PD_NAME, DTRACE_NAMELEN)?.into(),
        })
    };
    let from = m(0)?;
    let to = m(PROBEDESC_SIZE)?;
    let core = fw.lock.lock();
    let mut inner = state.inner.lock();
    let clones: Vec<_> = inner
        .retained
        .iter()
        .filter(|(d, _)| d.probe == from)
        .map(|(d, _)| {
            let mut c = d.clone();
            c.probe = to.clone();
            c
        })
        .collect();
    if inner.retained.len() + clones.len() > RETAIN_MAX {
        return Err(Errno::ENOSPC);
    }
    for c in clones {
        inner.retained.push((c, 0));
    }
    let _ = &core;
    Ok(())
}

/// `/dev/dtrace/helper`: DTRACEHIOC_ADDDOF validates the helper DOF (provider
/// sections allowed) and hands out a generation; REMOVE forgets one.
pub fn helper_ioctl(
    fw: &Framework,
    cmd: u32,
    arg: &mut [u8],
    _caller: &ThreadIdentity,
) -> Result<(), Errno> {
    static GENERATION: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);
    match cmd {
        DTRACEHIOC_ADDDOF => {
            need(arg, 88)?;
            let uaddr = get_u64(arg, 72).unwrap_or(0);
            let base = get_u64(arg, 64).unwrap_or(0);
            let mut image = dof_copyin(fw, uaddr).map_err(|(e, _)| e)?;
            if let Err(e) = dof::load(&mut image, false, base, uaddr, DEFAULT_STRSIZE as u64) {
                fw.platform
                    .log(&format!("dtrace: rejected helper DOF: {}", e.0));
                return Err(Errno::EINVAL);
            }
            let g = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
            put_i32(arg, 84, g);
            Ok(())
        }
        DTRACEHIOC_REMOVE => {
            need(arg, 4)?;
            let g = get_i32(arg, 0).unwrap_or(0);
            if g <= 0 || g > GENERATION.load(Ordering::Relaxed) {
                return Err(Errno::EINVAL);
            }
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}
