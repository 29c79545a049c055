//! One tracing session: ENABLE, GO, the work loop, STOP and the final
//! aggregation print — what libdtrace's `dtrace_go`/`dtrace_work`/
//! `dtrace_stop` and dtrace(1)'s main loop do together.
//!
//! Timing: the loop wakes every few milliseconds to read STATUS (so `exit()`
//! and a full buffer are noticed promptly; a program that sets `statusrate`
//! gets libdtrace's pacing instead, see [`RunConfig::strict_statusrate`]),
//! snapshots the principal buffers every `switchrate` and whenever tracing
//! stops, folds the aggregation buffers into the running totals every
//! `aggrate`, and re-reads them for `printa()` at most once per consume
//! pass. `setopt()` of a rate changes it from then on. The buffers of CPUs
//! `0..Device::cpu_count()` are read.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use rdtrace_ffi::consumer::Status;
use rdtrace_ffi::probe::ProbeDesc;

use crate::output::model::{
    AggKind, Aggregation, DropEvent, DropKind, ErrorEvent, ProbeFiring, Record,
};
use crate::output::OutputSink;

use super::client::{AggregationInfo, Client, EnabledProbeInfo};
use super::decode::{Action, AggregationMerger, DecodeError, FiredRecord, RecordDecoder};
use super::device::IoctlError;

/// Sizes and rates the consumer needs (the kernel gets the same values
/// through the program's option section).
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Per-CPU principal buffer size (`bufsize`).
    pub bufsize: usize,
    /// Per-CPU aggregation buffer size (`aggsize`).
    pub aggsize: usize,
    /// How often principal buffers are switched and read (`switchrate`).
    pub switchrate: Duration,
    /// How often aggregation buffers are read for the final print (`aggrate`).
    pub aggrate: Duration,
    /// How often STATUS is read (`statusrate`, but at least every 10 ms here
    /// so that `exit()` is seen promptly).
    pub statusrate: Duration,
    /// Read STATUS only every `statusrate` and end only when STATUS says
    /// the program exited (libdtrace's behaviour, which a program that sets
    /// `statusrate` itself relies on). Off by default: the loop then reads
    /// STATUS every few milliseconds and ends as soon as an `exit()` record
    /// is consumed, so short programs finish promptly.
    pub strict_statusrate: bool,
    /// CPUs whose buffers to read (0..ncpus); `None` asks the device
    /// ([`super::device::Device::cpu_count`]), which is what dtrace(1) does.
    pub ncpus: Option<u32>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            bufsize: 4 << 20,
            aggsize: 4 << 20,
            switchrate: Duration::from_secs(1),
            aggrate: Duration::from_secs(1),
            statusrate: Duration::from_secs(1),
            strict_statusrate: false,
            ncpus: None,
        }
    }
}

/// Why a session failed.
#[derive(Debug)]
pub enum SessionError {
    Ioctl(&'static str, IoctlError),
    /// GO refused, with libdtrace's wording.
    Go(String),
    Decode(DecodeError),
    Output(io::Error),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Ioctl(what, e) => write!(f, "{what}: {e}"),
            SessionError::Go(text) => write!(f, "could not enable tracing: {text}"),
            SessionError::Decode(e) => write!(f, "corrupt buffer: {e}"),
            SessionError::Output(e) => write!(f, "output error: {e}"),
        }
    }
}

impl From<DecodeError> for SessionError {
    fn from(e: DecodeError) -> Self {
        SessionError::Decode(e)
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Output(e)
    }
}

/// Actions libdtrace carries out in the consumer rather than the kernel:
/// `system()` runs a command and `freopen()` redirects the output. The
/// dtrace command implements them; the session formats their arguments.
pub trait ConsumerActions {
    /// Flush pending output, then run `command` with `/bin/sh -c`.
    fn system(&mut self, sink: &mut dyn OutputSink, command: &str) -> io::Result<()>;
    /// Redirect output to `path` (append), or back to standard output when
    /// `path` is empty.
    fn freopen(&mut self, sink: &mut dyn OutputSink, path: &str) -> io::Result<()>;
}

/// A [`ConsumerActions`] that ignores both (for library users that do not
/// allow destructive actions).
pub struct NoConsumerActions;

impl ConsumerActions for NoConsumerActions {
    fn system(&mut self, _sink: &mut dyn OutputSink, _command: &str) -> io::Result<()> {
        Ok(())
    }
    fn freopen(&mut self, _sink: &mut dyn OutputSink, _path: &str) -> io::Result<()> {
        Ok(())
    }
}

/// libdtrace's message for a GO refusal (`dtrace_go`'s errno mapping).
pub fn go_error_text(errno: i32) -> String {
    match errno {
        libc::EACCES => "Destructive actions not allowed".to_string(),
        libc::E2BIG => "END enablings exceed size of principal buffer".to_string(),
        libc::ENOSPC => "Enabling exceeds size of buffer".to_string(),
        libc::ENOENT => "No anonymous tracing state".to_string(),
        libc::EALREADY => "Anonymous tracing state is already enabled".to_string(),
        e => super::device::errno_text(e),
    }
}

/// What the caller of [`Session::run_until`] wants after a turn of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// Keep tracing.
    Continue,
    /// Stop: the user interrupted (SIGINT/SIGTERM).
    Interrupted,
    /// Stop quietly (e.g. every traced process has exited).
    Finished,
    /// Stop at once and print nothing more: dtrace(1) after a second
    /// SIGINT/SIGTERM ("impatient"). Buffered records and the final
    /// aggregations are dropped; only the closing newline is written.
    Abandon,
}

/// What one turn of the work loop found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkState {
    /// Keep going.
    Running,
    /// `exit()` was called, a fill buffer filled, or the state was killed:
    /// the caller should stop.
    Done,
}

/// A consumer state driving one program.
pub struct Session {
    client: Client,
    config: RunConfig,
    eprobes: HashMap<u32, EnabledProbeInfo>,
    probes: HashMap<u32, ProbeDesc>,
    formats: HashMap<u16, String>,
    aggdescs: HashMap<u32, AggregationInfo>,
    aggregation_names: HashMap<u64, String>,
    /// Each aggregation variable's function, known from the program before
    /// the kernel has data for it (a printa of an empty aggregation prints
    /// its zero value).
    aggregation_kinds: HashMap<u64, AggKind>,
    /// EPIDs of the default ERROR handler's enabling.
    error_epids: HashSet<u32>,
    ecbs_enabled: u32,
    /// Per ENABLE: the EPIDs it created and, per ECB (DOF `uarg` − 1), the
    /// signedness of each record EPROBE reports.
    enablings: Vec<(std::ops::Range<u32>, Vec<Vec<bool>>)>,
    exit_status: Option<i32>,
    /// Running aggregation totals (AGGSNAP returns only new data).
    aggregate: AggregationMerger,
    /// Aggregation variables already printed by printa() (skipped at the end).
    printed: HashSet<u64>,
    last_status: Status,
    principal_drops: HashMap<u32, u64>,
    /// Aggregation drops seen by a snapshot, reported at the next chance to
    /// write to the output.
    pending_drops: Vec<DropEvent>,
    aggregation_drops: HashMap<u32, u64>,
    last_switch: Option<Instant>,
    /// When the aggregation buffers were last read (every `aggrate`).
    last_aggregate: Option<Instant>,
    /// When STATUS was last read (every `statusrate` when strict).
    last_status_poll: Option<Instant>,
    stopped: bool,
    actions: Box<dyn ConsumerActions>,
}

/// The option values in a DOFGET image (its OPTDESC section).
pub fn kernel_options(image: &[u8]) -> HashMap<u32, i64> {
    use rdtrace_ffi::dof::{DofHdr, DofOptDesc, DofSec, DofSecType};
    use rdtrace_ffi::pod::Pod;
    let mut values = HashMap::new();
    let Some(head) = DofHdr::from_bytes(image) else {
        return values;
    };
    for i in 0..head.secnum as usize {
        let at = (head.secoff as usize).saturating_add(i.saturating_mul(head.secsize as usize));
        let Some(sec) = DofSec::read_at(image, at) else {
            break;
        };
        if sec.ty != DofSecType::OptDesc as u32 {
            continue;
        }
        let entsize = (sec.entsize as usize).max(core::mem::size_of::<DofOptDesc>());
        let mut off = sec.offset as usize;
        let end = (sec.offset.saturating_add(sec.size)) as usize;
        while off + core::mem::size_of::<DofOptDesc>() <= end {
            if let Some(opt) = DofOptDesc::read_at(image, off) {
                values.insert(opt.option, opt.value as i64);
            }
            off += entsize;
        }
    }
    values
}

fn ioctl_err(what: &'static str) -> impl Fn(IoctlError) -> SessionError {
    move |e| SessionError::Ioctl(what, e)
}

impl Session {
    /// A session over `client`; `aggregation_names` maps the compiler's
    /// aggregation variable ids to names (without `@`).
    pub fn new(
        client: Client,
        config: RunConfig,
        aggregation_names: HashMap<u64, String>,
    ) -> Session {
        let mut config = config;
        if config.ncpus.is_none() {
            config.ncpus = Some(client.device().cpu_count());
        }
        Session {
            client,
            config,
            eprobes: HashMap::new(),
            probes: HashMap::new(),
            formats: HashMap::new(),
            aggdescs: HashMap::new(),
            aggregation_names,
            aggregation_kinds: HashMap::new(),
            error_epids: HashSet::new(),
            ecbs_enabled: 0,
            enablings: Vec::new(),
            exit_status: None,
            aggregate: AggregationMerger::default(),
            printed: HashSet::new(),
            last_status: Status::default(),
            principal_drops: HashMap::new(),
            pending_drops: Vec::new(),
            aggregation_drops: HashMap::new(),
            last_switch: None,
            last_aggregate: None,
            last_status_poll: None,
            stopped: false,
            actions: Box::new(NoConsumerActions),
        }
    }

    /// How many CPUs' buffers this session reads.
    pub fn cpus(&self) -> u32 {
        self.config.ncpus.unwrap_or(1)
    }

    /// The aggregating function of each aggregation variable id (from the
    /// compiled programs), used for aggregations without data.
    pub fn set_aggregation_kinds(&mut self, kinds: HashMap<u64, AggKind>) {
        self.aggregation_kinds = kinds;
    }

    /// An aggregation variable with no data yet, as printa sees it.
    fn empty_aggregation(&self, varid: u64) -> Aggregation {
        Aggregation {
            id: varid as u32,
            name: self
                .aggregation_names
                .get(&varid)
                .cloned()
                .unwrap_or_default(),
            kind: self
                .aggregation_kinds
                .get(&varid)
                .copied()
                .unwrap_or(AggKind::Count),
            normal: 1,
            entries: Vec::new(),
        }
    }

    /// Who carries out `system()` and `freopen()`.
    pub fn set_consumer_actions(&mut self, actions: Box<dyn ConsumerActions>) {
        self.actions = actions;
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// ENABLE a program; returns the number of probes it matched. EPIDs are
    /// handed out in order, one per ECB, starting after earlier enablings.
    pub fn enable(&mut self, dof: &[u8]) -> Result<i32, SessionError> {
        let matched = self.client.enable(dof).map_err(ioctl_err("enable"))?;
        self.ecbs_enabled = self.ecbs_enabled.saturating_add(matched.max(0) as u32);
        Ok(matched)
    }

    /// ENABLE a compiled program whose records' D signedness is known:
    /// `signedness[i]` describes the ECB the compiler numbered `i + 1`.
    pub fn enable_typed(
        &mut self,
        dof: &[u8],
        signedness: Vec<Vec<bool>>,
    ) -> Result<i32, SessionError> {
        let first = self.ecbs_enabled + 1;
        let matched = self.enable(dof)?;
        self.enablings
            .push((first..self.ecbs_enabled + 1, signedness));
        Ok(matched)
    }

    /// ENABLE the default ERROR handler (`trace(arg1..arg5)` on
    /// `dtrace:::ERROR`); its records become error messages. libdtrace
    /// enables it last, at GO time, so programs' EPIDs start at 1.
    pub fn enable_error_handler(&mut self, dof: &[u8]) -> Result<(), SessionError> {
        let first = self.ecbs_enabled + 1;
        let matched = self.enable(dof)?;
        for epid in first..first + matched.max(0) as u32 {
            self.error_epids.insert(epid);
        }
        Ok(())
    }

    /// GO: start tracing (BEGIN fires), then read back the option values
    /// the kernel settled on (it may grow or shrink buffers), as libdtrace
    /// does with DOFGET.
    pub fn go(&mut self) -> Result<(), SessionError> {
        self.client
            .go()
            .map_err(|e| SessionError::Go(go_error_text(e.errno)))?;
        if let Ok(image) = self.client.dofget() {
            self.apply_kernel_options(&kernel_options(&image));
        }
        Ok(())
    }

    fn apply_kernel_options(&mut self, values: &HashMap<u32, i64>) {
        use rdtrace_ffi::option::DtraceOption as O;
        let get = |o: O| values.get(&(o as u32)).copied().filter(|v| *v >= 0);
        if let Some(v) = get(O::BufSize) {
            self.config.bufsize = v as usize;
        }
        if let Some(v) = get(O::AggSize) {
            self.config.aggsize = v as usize;
        }
        let rate = |v: i64| Duration::from_nanos(v as u64);
        if let Some(v) = get(O::SwitchRate).filter(|v| *v > 0) {
            self.config.switchrate = rate(v);
        }
        if let Some(v) = get(O::AggRate).filter(|v| *v > 0) {
            self.config.aggrate = rate(v);
        }
        if let Some(v) = get(O::StatusRate).filter(|v| *v > 0) {
            self.config.statusrate = rate(v);
        }
    }

    /// The value passed to `exit()`, once seen.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_status
    }

    fn probe(&mut self, id: u32) -> Result<ProbeDesc, SessionError> {
        if let Some(p) = self.probes.get(&id) {
            return Ok(*p);
        }
        // PROBES returns the first probe whose id is at least the one asked.
        let found = self
            .client
            .probes_from(id)
            .map_err(ioctl_err("probe lookup"))?;
        let desc = found.filter(|p| p.id == id).unwrap_or_else(|| {
            let mut d = <ProbeDesc as rdtrace_ffi::pod::Pod>::zeroed();
            d.id = id;
            d
        });
        self.probes.insert(id, desc);
        Ok(desc)
    }

    fn decode_snapshot(
        &mut self,
        data: &[u8],
        start: usize,
    ) -> Result<Vec<FiredRecord>, SessionError> {
        let client = &self.client;
        let eprobes = &mut self.eprobes;
        let formats = &mut self.formats;
        let mut eprobe = |epid: u32| -> Result<EnabledProbeInfo, DecodeError> {
            if let Some(info) = eprobes.get(&epid) {
                return Ok(info.clone());
            }
            let info = client
                .eprobe(epid)
                .map_err(|e| DecodeError(format!("enabled probe ID {epid}: {e}")))?;
            eprobes.insert(epid, info.clone());
            Ok(info)
        };
        let mut format = |id: u16| -> Result<String, DecodeError> {
            if let Some(f) = formats.get(&id) {
                return Ok(f.clone());
            }
            let f = client
                .format(id)
                .map_err(|e| DecodeError(format!("format {id}: {e}")))?;
            formats.insert(id, f.clone());
            Ok(f)
        };
        let enablings = &self.enablings;
        let mut signedness = |info: &EnabledProbeInfo| -> Option<Vec<bool>> {
            let (_, ecbs) = enablings
                .iter()
                .find(|(epids, _)| epids.contains(&info.epid))?;
            ecbs.get(usize::try_from(info.uarg).ok()?.checked_sub(1)?)
                .cloned()
        };
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut signedness,
        };
        Ok(decoder.decode(data, start)?)
    }

    /// Snapshot every CPU's aggregation buffer into the running totals and
    /// return them, by aggregation variable id.
    pub fn aggregations(&mut self) -> Result<HashMap<u64, Aggregation>, SessionError> {
        for cpu in 0..self.cpus() {
            let snap = match self.client.aggsnap(cpu, self.config.aggsize) {
                Ok(s) => s,
                Err(e) if e.errno == libc::ENOENT => continue,
                Err(e) => return Err(SessionError::Ioctl("aggregation snapshot", e)),
            };
            // Each switch-style snapshot reports the drops since the previous one.
            if snap.desc.drops > 0 {
                let total =
                    self.aggregation_drops.get(&cpu).copied().unwrap_or(0) + snap.desc.drops;
                self.aggregation_drops.insert(cpu, total);
                self.pending_drops.push(DropEvent {
                    kind: DropKind::Aggregation,
                    cpu: Some(cpu),
                    count: snap.desc.drops,
                    total,
                });
            }
            let client = &self.client;
            let aggdescs = &mut self.aggdescs;
            let mut describe = |aggid: u32| -> Result<AggregationInfo, DecodeError> {
                if let Some(d) = aggdescs.get(&aggid) {
                    return Ok(d.clone());
                }
                let d = client
                    .aggdesc(aggid)
                    .map_err(|e| DecodeError(format!("aggregation {aggid}: {e}")))?;
                aggdescs.insert(aggid, d.clone());
                Ok(d)
            };
            let names = &self.aggregation_names;
            let name_of = |varid: u64| {
                names
                    .get(&varid)
                    .cloned()
                    .unwrap_or_else(|| "_".to_string())
            };
            self.aggregate
                .add_snapshot(&snap.data, &mut describe, &name_of)?;
        }
        Ok(self.aggregate.aggregations().clone())
    }

    fn deliver(
        &mut self,
        cpu: u32,
        records: Vec<FiredRecord>,
        sink: &mut dyn OutputSink,
    ) -> Result<(), SessionError> {
        let mut snapshot: Option<HashMap<u64, Aggregation>> = None;
        let next_ids: Vec<Option<(u32, u32)>> = records
            .iter()
            .skip(1)
            .map(|r| {
                Some((
                    r.epid,
                    self.eprobes.get(&r.epid).map(|i| i.probe_id).unwrap_or(0),
                ))
            })
            .chain(std::iter::once(None))
            .collect();
        for (record, next) in records.into_iter().zip(next_ids) {
            let info = self.eprobes.get(&record.epid).cloned();
            let probe_id = info.as_ref().map(|i| i.probe_id).unwrap_or(0);
            if self.error_epids.contains(&record.epid) {
                self.report_error(&record, sink)?;
                continue;
            }
            let desc = self.probe(probe_id)?;
            let firing = ProbeFiring {
                cpu,
                epid: record.epid,
                probe_id,
                provider: desc.provider_str().unwrap_or("").to_string(),
                module: desc.module_str().unwrap_or("").to_string(),
                function: desc.function_str().unwrap_or("").to_string(),
                name: desc.name_str().unwrap_or("").to_string(),
                timestamp: record.timestamp,
            };
            sink.begin_probe(&firing, next)?;
            for action in record.actions {
                match action {
                    Action::Record(r) => sink.record(&r)?,
                    // dtrace(1) takes the status of every exit() record it
                    // consumes, so END's exit() overrides an earlier one.
                    Action::Exit(status) => self.exit_status = Some(status),
                    Action::Printa { format, variables } => {
                        if snapshot.is_none() {
                            snapshot = Some(self.aggregations()?);
                        }
                        // Every named aggregation takes part, those without
                        // data as their empty (zero-valued) selves, so the
                        // columns of a multi-aggregation printa stay in place.
                        let empties: Vec<Aggregation> = variables
                            .iter()
                            .filter(|v| !snapshot.as_ref().is_some_and(|s| s.contains_key(v)))
                            .map(|&v| self.empty_aggregation(v))
                            .collect();
                        let aggs: Vec<&Aggregation> = variables
                            .iter()
                            .filter_map(|v| {
                                snapshot
                                    .as_ref()
                                    .and_then(|s| s.get(v))
                                    .or_else(|| empties.iter().find(|e| u64::from(e.id) == *v))
                            })
                            .collect();
                        sink.printa(format.as_deref(), &aggs)?;
                        self.printed.extend(variables);
                    }
                    Action::Library { code, args } => self.library_action(code, &args, sink)?,
                    Action::System { format, args } => {
                        let command = self.render_text(&format, &args)?;
                        self.actions.system(sink, &command)?;
                    }
                    Action::Freopen { format, args } => {
                        let path = self.render_text(&format, &args)?;
                        self.actions.freopen(sink, &path)?;
                    }
                }
            }
            sink.end_probe()?;
        }
        Ok(())
    }

    /// Carry out a libdtrace-side action on the running aggregation totals
    /// (after pulling in what the kernel aggregated so far) or the options.
    fn library_action(
        &mut self,
        code: u64,
        args: &[Record],
        sink: &mut dyn OutputSink,
    ) -> Result<(), SessionError> {
        use crate::compiler::codegen::{
            LIBACT_CLEAR, LIBACT_DENORMALIZE, LIBACT_NORMALIZE, LIBACT_SETOPT, LIBACT_TRUNC,
        };
        let int = |i: usize| args.get(i).and_then(Record::as_i64);
        let varid = int(0).unwrap_or(0) as u64;
        match code {
            LIBACT_CLEAR | LIBACT_TRUNC | LIBACT_NORMALIZE | LIBACT_DENORMALIZE => {
                self.aggregations()?;
                match code {
                    LIBACT_CLEAR => self.aggregate.clear(varid),
                    LIBACT_TRUNC => self.aggregate.truncate(varid, int(1)),
                    LIBACT_NORMALIZE => self
                        .aggregate
                        .set_normal(varid, int(1).unwrap_or(1).max(1) as u64),
                    _ => self.aggregate.set_normal(varid, 1),
                }
            }
            LIBACT_SETOPT => {
                let text = |r: Option<&Record>| match r {
                    Some(Record::Bytes { data, .. }) => {
                        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                        Some(String::from_utf8_lossy(&data[..end]).into_owned())
                    }
                    _ => None,
                };
                if let Some(name) = text(args.first()) {
                    let value = text(args.get(1));
                    self.set_consumer_rate(&name, value.as_deref());
                    let mut options = sink.current_options();
                    options.apply(&name, value.as_deref());
                    sink.set_options(options);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `setopt()` of a rate the consumer paces itself by (`switchrate`,
    /// `aggrate`, `statusrate`): libdtrace applies it to its own loop from
    /// then on. Invalid values are ignored here (the compiler checks
    /// constant ones).
    fn set_consumer_rate(&mut self, name: &str, value: Option<&str>) {
        let slot = match name {
            "switchrate" => &mut self.config.switchrate,
            "aggrate" => &mut self.config.aggrate,
            "statusrate" => &mut self.config.statusrate,
            _ => return,
        };
        if let Ok(ns) = crate::compiler::options::validate(name, value, false) {
            if ns > 0 {
                *slot = Duration::from_nanos(ns as u64);
            }
        }
    }

    /// Format a `system()`/`freopen()` argument list into its text.
    fn render_text(&self, format: &str, args: &[Record]) -> Result<String, SessionError> {
        use crate::output::printf::{sprintf, RenderCtx};
        let symbols = crate::output::stack::NoSymbols;
        let ctx = RenderCtx {
            symbols: &symbols,
            stackindent: 14,
            target_pid: 0,
            hist: Default::default(),
        };
        let bytes =
            sprintf(format, args, &ctx).map_err(|e| SessionError::Decode(DecodeError(e)))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn report_error(
        &mut self,
        record: &FiredRecord,
        sink: &mut dyn OutputSink,
    ) -> Result<(), SessionError> {
        let value = |i: usize| match record.actions.get(i) {
            Some(Action::Record(r)) => r.as_i64().unwrap_or(0),
            _ => 0,
        };
        let epid = value(0) as u32;
        let probe_id = match self.eprobes.get(&epid) {
            Some(i) => i.probe_id,
            None => self.client.eprobe(epid).map(|i| i.probe_id).unwrap_or(0),
        };
        let desc = self.probe(probe_id)?;
        // libdtrace keeps the fault offset in an int (dteda_offset): -1,
        // however the kernel widened it, means "not in DIF".
        let offset = i64::from(value(2) as i32);
        let event = ErrorEvent {
            epid,
            probe_id,
            provider: desc.provider_str().unwrap_or("").to_string(),
            module: desc.module_str().unwrap_or("").to_string(),
            function: desc.function_str().unwrap_or("").to_string(),
            name: desc.name_str().unwrap_or("").to_string(),
            action: value(1) as u32,
            dif_offset: if offset < 0 { None } else { Some(offset) },
            fault: value(3) as u32,
            address: value(4) as u64,
        };
        sink.error_event(&event)?;
        Ok(())
    }

    /// Read and print every CPU's principal buffer.
    pub fn consume(&mut self, sink: &mut dyn OutputSink) -> Result<(), SessionError> {
        for cpu in 0..self.cpus() {
            let snap = match self.client.bufsnap(cpu, self.config.bufsize) {
                Ok(s) => s,
                Err(e) if e.errno == libc::ENOENT || e.errno == libc::EBUSY => continue,
                Err(e) => return Err(SessionError::Ioctl("buffer snapshot", e)),
            };
            let before = self
                .principal_drops
                .insert(cpu, snap.desc.drops)
                .unwrap_or(0);
            if snap.desc.drops > before {
                sink.drop_event(&DropEvent {
                    kind: DropKind::Principal,
                    cpu: Some(cpu),
                    count: snap.desc.drops - before,
                    total: snap.desc.drops,
                })?;
            }
            let records = self.decode_snapshot(&snap.data, snap.desc.oldest as usize)?;
            self.deliver(cpu, records, sink)?;
        }
        self.last_switch = Some(Instant::now());
        Ok(())
    }

    /// Read STATUS and report new drops; Done once the program exited,
    /// filled its buffer or was killed.
    pub fn poll_status(&mut self, sink: &mut dyn OutputSink) -> Result<WorkState, SessionError> {
        let status = match self.client.status() {
            Ok(s) => s,
            Err(e) => return Err(SessionError::Ioctl("status", e)),
        };
        let old = self.last_status;
        let mut report = |kind: DropKind, new: u64, old: u64| -> io::Result<()> {
            if new > old {
                sink.drop_event(&DropEvent {
                    kind,
                    cpu: None,
                    count: new - old,
                    total: new,
                })?;
            }
            Ok(())
        };
        report(DropKind::Dynamic, status.dyndrops, old.dyndrops)?;
        report(
            DropKind::DynRinse,
            status.dyndrops_rinsing,
            old.dyndrops_rinsing,
        )?;
        report(
            DropKind::DynDirty,
            status.dyndrops_dirty,
            old.dyndrops_dirty,
        )?;
        report(DropKind::Spec, status.specdrops, old.specdrops)?;
        report(
            DropKind::SpecBusy,
            status.specdrops_busy,
            old.specdrops_busy,
        )?;
        report(
            DropKind::SpecUnavail,
            status.specdrops_unavail,
            old.specdrops_unavail,
        )?;
        report(
            DropKind::StackStringOverflow,
            status.stkstroverflows,
            old.stkstroverflows,
        )?;
        report(DropKind::DoubleError, status.dblerrors, old.dblerrors)?;
        self.last_status = status;
        for ev in std::mem::take(&mut self.pending_drops) {
            sink.drop_event(&ev)?;
        }
        if status.killed != 0 || status.exiting != 0 || status.filled != 0 {
            return Ok(WorkState::Done);
        }
        Ok(WorkState::Running)
    }

    /// One turn of the loop: status, the principal buffers when
    /// `switchrate` is due and the aggregation buffers when `aggrate` is
    /// due (so a small switch-style aggregation buffer is drained before it
    /// drops, as libdtrace's `dtrace_work` does).
    pub fn work(&mut self, sink: &mut dyn OutputSink) -> Result<WorkState, SessionError> {
        let due = |last: Option<Instant>, rate: Duration| {
            last.map(|t| t.elapsed() >= rate).unwrap_or(true)
        };
        let state = if !self.config.strict_statusrate
            || due(self.last_status_poll, self.config.statusrate)
        {
            self.last_status_poll = Some(Instant::now());
            self.poll_status(sink)?
        } else {
            WorkState::Running
        };
        if due(self.last_switch, self.config.switchrate) || state == WorkState::Done {
            self.consume(sink)?;
        }
        if !self.aggregation_names.is_empty() && due(self.last_aggregate, self.config.aggrate) {
            self.aggregations()?;
            self.last_aggregate = Some(Instant::now());
        }
        if self.exit_status.is_some() && !self.config.strict_statusrate {
            return Ok(WorkState::Done);
        }
        Ok(state)
    }

    /// STOP (END fires) and consume what is left. Idempotent.
    pub fn stop(&mut self, sink: &mut dyn OutputSink) -> Result<(), SessionError> {
        if self.stop_tracing()? {
            self.consume(sink)?;
            let _ = self.poll_status(sink);
        }
        Ok(())
    }

    /// The STOP ioctl alone; `false` if tracing was already stopped.
    fn stop_tracing(&mut self) -> Result<bool, SessionError> {
        if self.stopped {
            return Ok(false);
        }
        self.stopped = true;
        self.client
            .stop()
            .map_err(ioctl_err("could not stop tracing"))?;
        Ok(true)
    }

    /// The impatient end: STOP without consuming anything more, then only
    /// the closing newline (no aggregations).
    fn abandon(&mut self, sink: &mut dyn OutputSink) -> Result<(), SessionError> {
        self.stop_tracing()?;
        sink.end_of_run(&[])?;
        sink.finish()?;
        Ok(())
    }

    /// After [`Session::stop`]: the closing newline and every aggregation
    /// not already printed by `printa()`, in variable-id order.
    pub fn finish(&mut self, sink: &mut dyn OutputSink) -> Result<(), SessionError> {
        let aggregations = self.aggregations()?;
        for ev in std::mem::take(&mut self.pending_drops) {
            sink.drop_event(&ev)?;
        }
        let mut ids: Vec<&u64> = aggregations
            .keys()
            .filter(|id| !self.printed.contains(id))
            .collect();
        ids.sort();
        let remaining: Vec<&Aggregation> = ids
            .into_iter()
            .filter_map(|id| aggregations.get(id))
            .collect();
        sink.end_of_run(&remaining)?;
        sink.finish()?;
        Ok(())
    }

    /// The whole run: GO, work until the program is done or `interrupted()`
    /// says so, STOP, finish. Returns the exit() status, if any.
    pub fn run(
        &mut self,
        sink: &mut dyn OutputSink,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, SessionError> {
        self.go()?;
        self.run_after_go(sink, interrupted)
    }

    /// [`Session::run`] without the GO, for callers that act between GO and
    /// the work loop (dtrace(1) releases its `-c` process there).
    pub fn run_after_go(
        &mut self,
        sink: &mut dyn OutputSink,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, SessionError> {
        let stop = || {
            if interrupted() {
                StopRequest::Finished
            } else {
                StopRequest::Continue
            }
        };
        self.run_until(sink, &stop)
    }

    /// The work loop after GO, asking `stop` after every turn whether to
    /// end. A [`StopRequest::Interrupted`] first writes the newline
    /// dtrace(1) prints on its first SIGINT/SIGTERM (even when quiet), then
    /// stops tracing. `stop` is asked again before the final consumption and
    /// before the final aggregation print: a [`StopRequest::Abandon`] at any
    /// of those points ends the run at once, printing nothing more.
    pub fn run_until(
        &mut self,
        sink: &mut dyn OutputSink,
        stop: &dyn Fn() -> StopRequest,
    ) -> Result<Option<i32>, SessionError> {
        let tick = self
            .config
            .statusrate
            .min(self.config.switchrate)
            .min(Duration::from_millis(10));
        let mut first = true;
        loop {
            let state = if first {
                first = false;
                self.last_status_poll = Some(Instant::now());
                let s = self.poll_status(sink)?;
                self.consume(sink)?;
                if self.exit_status.is_some() && !self.config.strict_statusrate {
                    WorkState::Done
                } else {
                    s
                }
            } else {
                self.work(sink)?
            };
            if state == WorkState::Done {
                break;
            }
            match stop() {
                StopRequest::Continue => {}
                StopRequest::Finished => break,
                StopRequest::Interrupted => {
                    sink.interrupted()?;
                    break;
                }
                StopRequest::Abandon => {
                    sink.interrupted()?;
                    self.abandon(sink)?;
                    return Ok(self.exit_status);
                }
            }
            std::thread::sleep(tick);
        }
        let abandoned = || stop() == StopRequest::Abandon;
        if abandoned() {
            self.abandon(sink)?;
            return Ok(self.exit_status);
        }
        self.stop(sink)?;
        if abandoned() {
            self.abandon(sink)?;
            return Ok(self.exit_status);
        }
        self.finish(sink)?;
        Ok(self.exit_status)
    }
}
