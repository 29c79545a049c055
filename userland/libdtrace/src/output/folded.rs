//! `-x oformat=folded`: aggregations as flame-graph input, one line per
//! entry, `frame;frame;… value` with the outermost caller first. Stack keys
//! contribute their frames (offsets dropped so one function is one frame);
//! other keys contribute their printed text as a single frame, in key order.
//! Histogram values contribute their total count. Probe records are not
//! printed. Not probe context.

use std::collections::HashSet;
use std::io::{self, Write};

use super::aggregate::{self, Row};
use super::model::{sign_extend, AggKind, Aggregation, DropEvent, ErrorEvent, ProbeFiring, Record};
use super::stack::{self, Symbolizer};
use super::{messages, OutputOptions, OutputSink};

/// Folded-stack backend.
pub struct FoldedOutput<'s, O: Write, E: Write> {
    out: O,
    err: E,
    opts: OutputOptions,
    symbols: &'s dyn Symbolizer,
    printed: HashSet<u32>,
}

impl<'s, O: Write, E: Write> FoldedOutput<'s, O, E> {
    pub fn new(out: O, err: E, opts: OutputOptions, symbols: &'s dyn Symbolizer) -> Self {
        FoldedOutput {
            out,
            err,
            opts,
            symbols,
            printed: HashSet::new(),
        }
    }

    pub fn into_inner(self) -> (O, E) {
        (self.out, self.err)
    }

    fn key_frames(&self, r: &Record) -> Vec<String> {
        match r {
            Record::Stack { kind, pcs, .. } => stack::folded_frames(self.symbols, *kind, pcs),
            Record::Int { size, bits, .. } => vec![match size {
                8 | 4 => sign_extend(*size, *bits).to_string(),
                _ => bits.to_string(),
            }],
            Record::Bytes { data, .. } => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                vec![String::from_utf8_lossy(&data[..end]).into_owned()]
            }
            Record::Sym(pc) => vec![stack::kernel_sym_text(self.symbols, *pc)],
            Record::Mod(pc) => vec![stack::kernel_mod_text(self.symbols, *pc)],
            Record::USym { pid, pc } => vec![stack::user_sym_text(self.symbols, *pid, *pc)],
            Record::UAddr { pid, pc } => vec![stack::user_addr_text(self.symbols, *pid, *pc)],
            Record::UMod { pid, pc } => vec![stack::user_mod_text(self.symbols, *pid, *pc)],
            _ => Vec::new(),
        }
    }

    fn write_rows(&mut self, rows: &[Row<'_>]) -> io::Result<()> {
        for row in rows {
            let frames: Vec<String> = row
                .key
                .iter()
                .flat_map(|k| self.key_frames(k))
                .map(|f| f.replace([';', ' '], "_"))
                .collect();
            let Some((kind, words, normal)) = row.values.first() else {
                continue;
            };
            let normal = (*normal).max(1);
            let first = words.first().copied().unwrap_or(0);
            let value = match kind {
                AggKind::Count | AggKind::Sum | AggKind::Min | AggKind::Max => {
                    first / normal as i64
                }
                AggKind::Avg => aggregate::average(words, normal),
                AggKind::Stddev => aggregate::stddev(words, normal) as i64,
                _ => aggregate::histogram_total(words),
            };
            let line = if frames.is_empty() {
                format!("{value}\n")
            } else {
                format!("{} {value}\n", frames.join(";"))
            };
            self.out.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

impl<O: Write, E: Write> OutputSink for FoldedOutput<'_, O, E> {
    fn begin_probe(&mut self, _p: &ProbeFiring, _next: Option<(u32, u32)>) -> io::Result<()> {
        Ok(())
    }

    fn record(&mut self, _rec: &Record) -> io::Result<()> {
        Ok(())
    }

    fn printa(&mut self, _format: Option<&str>, aggs: &[&Aggregation]) -> io::Result<()> {
        for agg in aggs {
            let rows = aggregate::sorted_rows(&[*agg], &self.opts.agg_options());
            self.write_rows(&rows)?;
            self.printed.insert(agg.id);
        }
        Ok(())
    }

    fn end_probe(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn drop_event(&mut self, ev: &DropEvent) -> io::Result<()> {
        let msg = messages::drop_message(ev, self.opts.droptags);
        self.err
            .write_all(messages::dtrace_stderr_line(&msg, "No such process").as_bytes())
    }

    fn error_event(&mut self, ev: &ErrorEvent) -> io::Result<()> {
        self.err
            .write_all(format!("dtrace: {}", messages::error_message(ev)).as_bytes())
    }

    fn interrupted(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn end_of_run(&mut self, aggs: &[&Aggregation]) -> io::Result<()> {
        let pending: Vec<&Aggregation> = aggs
            .iter()
            .copied()
            .filter(|a| !self.printed.contains(&a.id))
            .collect();
        let rows = aggregate::sorted_rows(&pending, &self.opts.agg_options());
        self.write_rows(&rows)
    }

    fn set_options(&mut self, opts: OutputOptions) {
        self.opts = opts;
    }

    fn current_options(&self) -> OutputOptions {
        self.opts
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}
