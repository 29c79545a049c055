//! Output of consumed data: one interface ([`OutputSink`]) with three
//! backends — [`text::TextOutput`] (byte-identical to FreeBSD dtrace(1)),
//! [`json::JsonOutput`] (FreeBSD's `-x oformat=json` / `--libxo json`
//! structure) and [`folded::FoldedOutput`] (stack aggregations as flame graph
//! input). The consumer decodes kernel buffers into [`model`] values and
//! drives a sink. Not probe context.
//!
//! Calling protocol (what the consumer does, in this order):
//! * for every probe firing in a buffer: [`OutputSink::begin_probe`] (with
//!   the EPID/probe id of the next record in the same buffer, for `-F`),
//!   [`OutputSink::record`] for each traced record (printf, trace, stack, …),
//!   [`OutputSink::printa`] for each `printa()` (after the consumer applied
//!   any preceding clear/trunc/normalize), then [`OutputSink::end_probe`];
//! * drops and faults as they are found: [`OutputSink::drop_event`],
//!   [`OutputSink::error_event`];
//! * on the first ^C / SIGINFO: [`OutputSink::interrupted`];
//! * when consumption stops (unless impatient): [`OutputSink::end_of_run`]
//!   with the final snapshot of every aggregation — it writes dtrace(1)'s
//!   closing newline and every aggregation `printa()` did not print; then
//!   [`OutputSink::finish`].
//!
//! Building aggregation snapshots: merge per-CPU data with
//! [`merge::add_entry`] (per-kind combine), then call
//! [`merge::merge_symbolic_keys`] so `sym()`/`usym()`/`mod()`/`umod()` keys
//! of one function/module aggregate together, as libdtrace does. Apply
//! `clear()`/`trunc()`/`normalize()` to the snapshot before `printa`.
//! `setopt()` changes reach the sink through [`OutputSink::set_options`].

pub mod aggregate;
pub mod cfmt;
pub mod flowindent;
pub mod folded;
pub mod histogram;
pub mod json;
pub mod listing;
pub mod merge;
pub mod messages;
pub mod model;
pub mod pack;
pub mod printf;
pub mod stack;
pub mod text;
pub mod trace;

use std::io;

use model::{Aggregation, DropEvent, ErrorEvent, ProbeFiring, Record};

/// Options that change output (the `-x` options of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// `-q`: no heading, no per-probe prefix, no end-of-probe newline.
    pub quiet: bool,
    /// `-F`: flow-indented FUNCTION column.
    pub flowindent: bool,
    /// `rawbytes`: byte arrays always as hex dumps.
    pub rawbytes: bool,
    /// `stackindent` (default 14).
    pub stackindent: usize,
    pub aggsortkey: bool,
    pub aggsortrev: bool,
    pub aggsortpos: usize,
    pub aggsortkeypos: usize,
    pub aggzoom: bool,
    /// `agghist`: count()/sum() aggregations as one histogram per variable.
    pub agghist: bool,
    /// `aggpack`: quantize()/lquantize() values packed on one line each.
    pub aggpack: bool,
    /// `encoding=utf8` histogram bars and packed cells (ASCII otherwise;
    /// FreeBSD picks UTF-8 for packed cells from $TERM when unset).
    pub utf8: bool,
    /// `-x droptags`.
    pub droptags: bool,
    /// Oracle dtrace-utils' `_DTRACE_TESTING` layout (no CPU/ID columns).
    /// FreeBSD has no such mode; off by default.
    pub oracle_testing_columns: bool,
    /// Oracle dtrace-utils' `trace()` integer widths and signedness (by D
    /// type). FreeBSD prints by record size only; off by default.
    pub oracle_trace_integers: bool,
    /// `$target` pid for `%A` of plain integers (0 when none).
    pub target_pid: u64,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            quiet: false,
            flowindent: false,
            rawbytes: false,
            stackindent: 14,
            aggsortkey: false,
            aggsortrev: false,
            aggsortpos: 0,
            aggsortkeypos: 0,
            aggzoom: false,
            agghist: false,
            aggpack: false,
            utf8: false,
            droptags: false,
            oracle_testing_columns: false,
            oracle_trace_integers: false,
            target_pid: 0,
        }
    }
}

impl OutputOptions {
    /// Apply one option setting by name, as `-x name[=value]` or the
    /// `setopt()` action gives it; names that do not affect output are
    /// ignored. A flag with no value is set.
    pub fn apply(&mut self, name: &str, value: Option<&str>) {
        let flag = || {
            let word = value.map(str::to_ascii_lowercase);
            !matches!(
                word.as_deref(),
                Some("0" | "no" | "false" | "off" | "unset" | "disable" | "disabled")
            )
        };
        let number = |default: usize| value.and_then(|v| v.trim().parse().ok()).unwrap_or(default);
        match name {
            "quiet" => self.quiet = flag(),
            "flowindent" => self.flowindent = flag(),
            "rawbytes" => self.rawbytes = flag(),
            "stackindent" => self.stackindent = number(self.stackindent),
            "aggsortkey" => self.aggsortkey = flag(),
            "aggsortrev" => self.aggsortrev = flag(),
            "aggsortpos" => self.aggsortpos = number(0),
            "aggsortkeypos" => self.aggsortkeypos = number(0),
            "aggzoom" => self.aggzoom = flag(),
            "droptags" => self.droptags = flag(),
            _ => {}
        }
    }

    /// The aggregation-related subset.
    pub fn agg_options(&self) -> aggregate::AggOptions {
        aggregate::AggOptions {
            sortkey: self.aggsortkey,
            sortrev: self.aggsortrev,
            sortpos: self.aggsortpos,
            sortkeypos: self.aggsortkeypos,
            rawbytes: self.rawbytes,
            hist: histogram::HistOptions {
                aggzoom: self.aggzoom,
                utf8: self.utf8,
            },
            agghist: self.agghist,
            aggpack: self.aggpack,
        }
    }
}

/// The output interface every backend implements (see the module docs for
/// the calling protocol).
pub trait OutputSink {
    /// A probe fired; `next` is the (EPID, probe id) of the next record in
    /// the same buffer, if any (flowindent's return heuristic).
    fn begin_probe(&mut self, probe: &ProbeFiring, next: Option<(u32, u32)>) -> io::Result<()>;
    /// One traced record of the current probe.
    fn record(&mut self, rec: &Record) -> io::Result<()>;
    /// `printa([format,] @a, …)`: `aggs` are the snapshots in argument order.
    fn printa(&mut self, format: Option<&str>, aggs: &[&Aggregation]) -> io::Result<()>;
    /// All records of the current probe were delivered.
    fn end_probe(&mut self) -> io::Result<()>;
    /// A drop report.
    fn drop_event(&mut self, ev: &DropEvent) -> io::Result<()>;
    /// A run-time fault (default ERROR handler).
    fn error_event(&mut self, ev: &ErrorEvent) -> io::Result<()>;
    /// First ^C / SIGINFO: dtrace(1) emits one newline.
    fn interrupted(&mut self) -> io::Result<()>;
    /// Consumption stopped: closing newline and unprinted aggregations.
    fn end_of_run(&mut self, aggs: &[&Aggregation]) -> io::Result<()>;
    /// Flush and close any open structure.
    fn finish(&mut self) -> io::Result<()>;
    /// Replaces the options (the `setopt()` action changes them mid-run).
    fn set_options(&mut self, opts: OutputOptions);
    /// The options in force.
    fn current_options(&self) -> OutputOptions;
}

#[cfg(test)]
mod option_tests {
    use super::OutputOptions;

    #[test]
    fn boolean_words_set_and_unset_case_insensitively() {
        let mut o = OutputOptions::default();
        for word in [
            "yes", "YES", "true", "enable", "enabled", "on", "set", "SeT",
        ] {
            o.quiet = false;
            o.apply("quiet", Some(word));
            assert!(o.quiet, "{word} should set quiet");
        }
        for word in [
            "no", "NO", "false", "disable", "disabled", "off", "UnSeT", "0",
        ] {
            o.flowindent = true;
            o.apply("flowindent", Some(word));
            assert!(!o.flowindent, "{word} should unset flowindent");
        }
        o.apply("quiet", None);
        assert!(o.quiet);
    }

    #[test]
    fn numeric_options_and_unknown_names() {
        let mut o = OutputOptions::default();
        o.apply("stackindent", Some("4"));
        o.apply("aggsortkeypos", Some("2"));
        o.apply("bufsize", Some("8m"));
        assert_eq!((o.stackindent, o.aggsortkeypos), (4, 2));
        o.apply("stackindent", Some("bogus"));
        assert_eq!(o.stackindent, 4);
    }
}
