//! Consumer-state and speculation lifecycle values (`DTRACE_ACTIVITY_*`,
//! `DTRACESPEC_*`) and the fixed ids of the built-in `dtrace` provider's
//! probes on a freshly loaded framework.
//!
//! Probe context: yes (plain values).

use crate::UnknownValue;

/// A consumer state's activity (`dtrace_activity_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u32)]
pub enum Activity {
    /// `DTRACE_ACTIVITY_INACTIVE`: opened, not started.
    #[default]
    Inactive = 0,
    /// `DTRACE_ACTIVITY_WARMUP`: GO in progress, BEGIN firing.
    Warmup = 1,
    /// `DTRACE_ACTIVITY_ACTIVE`: tracing.
    Active = 2,
    /// `DTRACE_ACTIVITY_DRAINING`: `exit()` called or STOP begun.
    Draining = 3,
    /// `DTRACE_ACTIVITY_COOLDOWN`: STOP in progress, END firing.
    Cooldown = 4,
    /// `DTRACE_ACTIVITY_STOPPED`: stopped.
    Stopped = 5,
    /// `DTRACE_ACTIVITY_KILLED`: killed by the deadman.
    Killed = 6,
}

impl TryFrom<u32> for Activity {
    type Error = UnknownValue;
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        Ok(match raw {
            0 => Activity::Inactive,
            1 => Activity::Warmup,
            2 => Activity::Active,
            3 => Activity::Draining,
            4 => Activity::Cooldown,
            5 => Activity::Stopped,
            6 => Activity::Killed,
            other => return Err(UnknownValue(other as u64)),
        })
    }
}

/// A speculation buffer's state (`dtrace_speculation_state_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum SpeculationState {
    /// `DTRACESPEC_INACTIVE`: free.
    #[default]
    Inactive = 0,
    /// `DTRACESPEC_ACTIVE`: allocated, no data yet.
    Active = 1,
    /// `DTRACESPEC_ACTIVEONE`: data on one CPU.
    ActiveOne = 2,
    /// `DTRACESPEC_ACTIVEMANY`: data on several CPUs.
    ActiveMany = 3,
    /// `DTRACESPEC_COMMITTING`: being committed.
    Committing = 4,
    /// `DTRACESPEC_COMMITTINGMANY`: committing across CPUs (cleaner finishes).
    CommittingMany = 5,
    /// `DTRACESPEC_DISCARDING`: being discarded.
    Discarding = 6,
}

impl TryFrom<u32> for SpeculationState {
    type Error = UnknownValue;
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        Ok(match raw {
            0 => SpeculationState::Inactive,
            1 => SpeculationState::Active,
            2 => SpeculationState::ActiveOne,
            3 => SpeculationState::ActiveMany,
            4 => SpeculationState::Committing,
            5 => SpeculationState::CommittingMany,
            6 => SpeculationState::Discarding,
            other => return Err(UnknownValue(other as u64)),
        })
    }
}

/// Probe id of `dtrace:::BEGIN` on a freshly loaded framework.
pub const DTRACE_PROBEID_BEGIN: u32 = 1;
/// Probe id of `dtrace:::END`.
pub const DTRACE_PROBEID_END: u32 = 2;
/// Probe id of `dtrace:::ERROR`.
pub const DTRACE_PROBEID_ERROR: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_round_trip() {
        for raw in 0..7u32 {
            assert_eq!(Activity::try_from(raw).map(|a| a as u32), Ok(raw));
            assert_eq!(SpeculationState::try_from(raw).map(|s| s as u32), Ok(raw));
        }
        assert!(Activity::try_from(7).is_err());
        assert!(SpeculationState::try_from(7).is_err());
        assert!(Activity::Warmup < Activity::Active);
    }
}
