//! The classic text backend: byte-for-byte what FreeBSD's dtrace(1) prints
//! for the same data — the `CPU ID FUNCTION:NAME` heading and `%3d %6d %32s `
//! prefix, records by kind, the end-of-probe newline (not when quiet),
//! printa layouts, the closing newline and the aggregations printed at the
//! end of the run. Drop and error messages go to the error stream with the
//! `dtrace: ` prefix. Not probe context.

use std::collections::HashSet;
use std::io::{self, Write};

use super::aggregate::{self, Row};
use super::cfmt::{self, Spec};
use super::flowindent::FlowState;
use super::messages;
use super::model::{Aggregation, DropEvent, ErrorEvent, ProbeFiring, Record};
use super::printf::{self, Format, RenderCtx};
use super::stack::{self, Symbolizer};
use super::trace;
use super::{OutputOptions, OutputSink};

/// Text output to `out` (stdout / `-o` file) and `err` (stderr).
pub struct TextOutput<'s, O: Write, E: Write> {
    out: O,
    err: E,
    opts: OutputOptions,
    symbols: &'s dyn Symbolizer,
    heading_done: bool,
    flow: FlowState,
    /// Aggregation variable ids already printed by printa().
    printed: HashSet<u32>,
    buf: Vec<u8>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<'s, O: Write, E: Write> TextOutput<'s, O, E> {
    pub fn new(out: O, err: E, opts: OutputOptions, symbols: &'s dyn Symbolizer) -> Self {
        TextOutput {
            out,
            err,
            opts,
            symbols,
            heading_done: false,
            flow: FlowState::default(),
            printed: HashSet::new(),
            buf: Vec::new(),
        }
    }

    /// The current options.
    pub fn options(&self) -> &OutputOptions {
        &self.opts
    }

    /// The output and error streams (for tests and for `-o` switching).
    pub fn into_inner(self) -> (O, E) {
        (self.out, self.err)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn ctx(&self) -> RenderCtx<'s> {
        RenderCtx {
            symbols: self.symbols,
            stackindent: self.opts.stackindent,
            target_pid: self.opts.target_pid,
            hist: self.opts.agg_options().hist,
        }
    }

    /// Renders one record into `out` as dt_consume_cpu does.
    fn render_record(&self, out: &mut Vec<u8>, rec: &Record) -> io::Result<()> {
        let quiet = self.opts.quiet;
        let w50 = Spec::left(50);
        match rec {
            Record::Int { size, bits, signed } => {
                if self.opts.oracle_trace_integers {
                    trace::trace_int_oracle(out, *size, *bits, *signed, quiet)
                } else {
                    trace::trace_int(out, *size, *bits, quiet)
                }
            }
            Record::Float { value, .. } => {
                // The kernel records floats as raw bytes; trace() of a
                // float therefore goes through the 8-byte integer path.
                trace::trace_int(out, 8, value.to_bits(), quiet)
            }
            Record::Bytes { data, force_raw } => {
                trace::print_bytes(out, data, -33, quiet, *force_raw || self.opts.rawbytes)
            }
            Record::Stack { kind, pcs, strtab } => stack::print_stack(
                out,
                self.symbols,
                *kind,
                pcs,
                strtab.as_deref(),
                self.opts.stackindent,
                &Spec::default(),
            ),
            Record::Sym(pc) => {
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    stack::kernel_sym_text(self.symbols, *pc).as_bytes(),
                    &w50,
                );
            }
            Record::Mod(pc) => {
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    stack::kernel_mod_text(self.symbols, *pc).as_bytes(),
                    &w50,
                );
            }
            Record::USym { pid, pc } => {
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    stack::user_sym_text(self.symbols, *pid, *pc).as_bytes(),
                    &w50,
                );
            }
            Record::UAddr { pid, pc } => {
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    stack::user_addr_text(self.symbols, *pid, *pc).as_bytes(),
                    &w50,
                );
            }
            Record::UMod { pid, pc } => {
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    stack::user_mod_text(self.symbols, *pid, *pc).as_bytes(),
                    &w50,
                );
            }
            Record::Printf { format, args } => {
                let f = Format::parse(format).map_err(invalid)?;
                printf::render(out, &f, args, &[], &self.ctx()).map_err(invalid)?;
            }
            Record::Exit(_) => {}
        }
        Ok(())
    }

    fn print_rows(&mut self, rows: &[Row<'_>]) {
        let agg_opts = self.opts.agg_options();
        let mut out = std::mem::take(&mut self.buf);
        aggregate::print_rows(
            &mut out,
            rows,
            self.symbols,
            self.opts.stackindent,
            &agg_opts,
        );
        self.buf = out;
    }
}

impl<O: Write, E: Write> OutputSink for TextOutput<'_, O, E> {
    fn begin_probe(&mut self, p: &ProbeFiring, next: Option<(u32, u32)>) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.buf);
        let testing = self.opts.oracle_testing_columns;
        if self.opts.flowindent {
            let column = self.flow.column(p, next);
            if !self.heading_done {
                out.extend_from_slice(
                    if testing {
                        format!("{:<41}\n", "FUNCTION")
                    } else {
                        format!("{:>3} {:<41}\n", "CPU", "FUNCTION")
                    }
                    .as_bytes(),
                );
                self.heading_done = true;
            }
            if testing {
                out.extend_from_slice(format!("{column:<41} ").as_bytes());
            } else {
                out.extend_from_slice(format!("{:>3} {column:<41} ", p.cpu).as_bytes());
            }
        } else if !self.opts.quiet {
            if !self.heading_done {
                out.extend_from_slice(
                    if testing {
                        format!("{:>32}\n", "FUNCTION:NAME")
                    } else {
                        format!("{:>3} {:>6} {:>32}\n", "CPU", "ID", "FUNCTION:NAME")
                    }
                    .as_bytes(),
                );
                self.heading_done = true;
            }
            let name = format!("{}:{}", p.function, p.name);
            if testing {
                out.extend_from_slice(format!("{name:>32} ").as_bytes());
            } else {
                out.extend_from_slice(
                    format!("{:>3} {:>6} {name:>32} ", p.cpu, p.probe_id).as_bytes(),
                );
            }
        }
        self.buf = out;
        Ok(())
    }

    fn record(&mut self, rec: &Record) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.buf);
        let r = self.render_record(&mut out, rec);
        self.buf = out;
        r
    }

    fn printa(&mut self, format: Option<&str>, aggs: &[&Aggregation]) -> io::Result<()> {
        let agg_opts = self.opts.agg_options();
        let rows = if aggs.len() > 1 {
            aggregate::joined_rows(aggs, &agg_opts)
        } else {
            aggregate::sorted_rows(aggs, &agg_opts)
        };
        match format {
            None => {
                self.buf.push(b'\n');
                self.print_rows(&rows);
            }
            Some(f) => {
                let f = Format::parse(f).map_err(invalid)?;
                let ctx = self.ctx();
                let mut out = std::mem::take(&mut self.buf);
                let r = aggregate::print_formatted(&mut out, &f, &rows, &ctx);
                self.buf = out;
                r.map_err(invalid)?;
            }
        }
        for a in aggs {
            self.printed.insert(a.id);
        }
        Ok(())
    }

    fn end_probe(&mut self) -> io::Result<()> {
        if !self.opts.quiet {
            self.buf.push(b'\n');
        }
        self.flush_buf()
    }

    fn drop_event(&mut self, ev: &DropEvent) -> io::Result<()> {
        self.flush_buf()?;
        let msg = messages::drop_message(ev, self.opts.droptags);
        let line = messages::dtrace_stderr_line(&msg, "No such process");
        self.err.write_all(line.as_bytes())
    }

    fn error_event(&mut self, ev: &ErrorEvent) -> io::Result<()> {
        self.flush_buf()?;
        let line = format!("dtrace: {}", messages::error_message(ev));
        self.err.write_all(line.as_bytes())
    }

    fn interrupted(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        self.flush_buf()
    }

    fn end_of_run(&mut self, aggs: &[&Aggregation]) -> io::Result<()> {
        self.buf.push(b'\n');
        let pending: Vec<&Aggregation> = aggs
            .iter()
            .copied()
            .filter(|a| !self.printed.contains(&a.id))
            .collect();
        let rows = aggregate::sorted_rows(&pending, &self.opts.agg_options());
        self.print_rows(&rows);
        self.flush_buf()
    }

    fn set_options(&mut self, opts: OutputOptions) {
        self.opts = opts;
    }

    fn current_options(&self) -> OutputOptions {
        self.opts
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.out.flush()?;
        self.err.flush()
    }
}
