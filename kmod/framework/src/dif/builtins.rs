//! Built-in D variables (`LDGS` of an id below `DIF_VAR_OTHER_UBASE`;
//! abi-facts §4.3). Probe context. String-valued built-ins are copied into
//! scratch and their scratch address returned. Ids with no meaning on
//! FreeBSD or unknown ids are an illegal operation.

use super::abi::{var as v, FaultCode};
use super::memory::{fault, Machine};
use super::Fault;

/// `MAXCOMLEN + 1`: the size of a FreeBSD process name.
const EXECNAME_SIZE: usize = 20;
/// Longest `execargs` we copy.
const EXECARGS_SIZE: usize = 256;
/// Longest jail name we copy (`MAXHOSTNAMELEN`).
const JAILNAME_SIZE: usize = 256;

/// Value of built-in variable `id`.
pub(crate) fn builtin(m: &mut Machine<'_, '_>, id: u16) -> Result<u64, Fault> {
    let t = m.ctx.thread;
    Ok(match id {
        v::CURTHREAD => t.curthread,
        v::TIMESTAMP => {
            if m.ctx.timestamp == 0 {
                m.ctx.timestamp = m.ctx.platform.monotonic_ns();
            }
            m.ctx.timestamp
        }
        v::VTIMESTAMP => m.ctx.hooks.vtimestamp(),
        v::WALLTIMESTAMP => {
            if m.ctx.walltimestamp == 0 {
                m.ctx.walltimestamp = m.ctx.platform.wall_ns();
            }
            m.ctx.walltimestamp
        }
        v::IPL => 0,
        v::EPID => u64::from(m.ctx.probe.epid),
        v::ID => u64::from(m.ctx.probe.id),
        v::ARG0..=v::ARG9 => {
            let index = u64::from(id - v::ARG0);
            match m.ctx.probe.args.get(index as usize) {
                Some(a) => *a,
                None => m.ctx.hooks.probe_arg(index).unwrap_or(0),
            }
        }
        v::STACKDEPTH => m.ctx.hooks.stack_depth(),
        v::USTACKDEPTH => m.ctx.hooks.user_stack_depth(),
        v::CALLER => m.ctx.hooks.caller(),
        v::UCALLER => m.ctx.hooks.user_caller(),
        v::PROBEPROV => {
            let s = m.ctx.probe.provider;
            m.scratch_string(s)?
        }
        v::PROBEMOD => {
            let s = m.ctx.probe.module;
            m.scratch_string(s)?
        }
        v::PROBEFUNC => {
            let s = m.ctx.probe.function;
            m.scratch_string(s)?
        }
        v::PROBENAME => {
            let s = m.ctx.probe.name;
            m.scratch_string(s)?
        }
        v::PID => t.pid as i64 as u64,
        v::PPID => t.ppid as i64 as u64,
        v::TID => t.tid as u64,
        v::UID => u64::from(t.uid),
        v::GID => u64::from(t.gid),
        v::JID => t.jid as i64 as u64,
        v::ERRNO => m.ctx.errno as i64 as u64,
        v::CPU => u64::from(m.ctx.cpu),
        v::EXECARGS => {
            let mut args = [0u8; EXECARGS_SIZE];
            if m.ctx.hooks.exec_args(&mut args) {
                m.scratch_string(&args)?
            } else {
                let mut name = [0u8; EXECNAME_SIZE];
                m.ctx.platform.current_execname(&mut name);
                m.scratch_string(&name)?
            }
        }
        v::EXECNAME => {
            let mut name = [0u8; EXECNAME_SIZE];
            m.ctx.platform.current_execname(&mut name);
            m.scratch_string(&name)?
        }
        v::JAILNAME => {
            let mut name = [0u8; JAILNAME_SIZE];
            m.ctx.hooks.jail_name(&mut name);
            m.scratch_string(&name)?
        }
        v::ZONENAME => m.scratch_string(b"global")?,
        _ => return Err(fault(FaultCode::IllOp, 0)),
    })
}
