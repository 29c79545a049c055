//! Structured output with the shape of FreeBSD's `-x oformat=json` /
//! `--libxo json` (dtrace(1) "STRUCTURED OUTPUT"): a top-level `dtrace`
//! object holding a `probes` list; each probe has `timestamp`, `cpu`, `id`,
//! `provider`, `module`, `function`, `name` and an `output` list (scalars as
//! `{"value"}`, printf as `{"message"}` followed by its arguments, named
//! actions as `{"sym"}`/`{"mod"}`/…, stacks as `stack-frames` /
//! `ustack-frames`, aggregations as `aggregation-name` + `aggregation-data`
//! with `keys` and the function name or `buckets`); drops appear as the
//! `dtrace:INTERNAL:INTERNAL:DROP` pseudo-probe. Aggregations printed at the
//! end of the run go to a top-level `aggregations` list (that placement is
//! ours; the manual does not show it). Not probe context.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::aggregate::{self, Row};
use super::histogram;
use super::messages;
use super::model::{
    sign_extend, AggKind, Aggregation, DropEvent, ErrorEvent, ProbeFiring, Record, StackKind,
};
use super::printf::{self, Format, RenderCtx};
use super::stack::{SymbolInfo, Symbolizer};
use super::{OutputOptions, OutputSink};

/// JSON backend; the document is written by [`OutputSink::finish`].
pub struct JsonOutput<'s, O: Write, E: Write> {
    out: O,
    err: E,
    opts: OutputOptions,
    symbols: &'s dyn Symbolizer,
    pretty: bool,
    probes: Vec<Value>,
    current: Option<Map<String, Value>>,
    aggregations: Vec<Value>,
    printed: std::collections::HashSet<u32>,
    last_timestamp: u64,
}

impl<'s, O: Write, E: Write> JsonOutput<'s, O, E> {
    pub fn new(
        out: O,
        err: E,
        opts: OutputOptions,
        symbols: &'s dyn Symbolizer,
        pretty: bool,
    ) -> Self {
        JsonOutput {
            out,
            err,
            opts,
            symbols,
            pretty,
            probes: Vec::new(),
            current: None,
            aggregations: Vec::new(),
            printed: Default::default(),
            last_timestamp: 0,
        }
    }

    pub fn into_inner(self) -> (O, E) {
        (self.out, self.err)
    }

    /// The document built so far (also what `finish` writes).
    pub fn document(&self) -> Value {
        json!({ "dtrace": { "probes": self.probes, "aggregations": self.aggregations } })
    }

    fn push_output(&mut self, v: Value) {
        if let Some(cur) = self.current.as_mut() {
            if let Some(Value::Array(list)) = cur.get_mut("output") {
                list.push(v);
            }
        } else {
            self.aggregations.push(v);
        }
    }

    fn frames(&self, kind: StackKind, pcs: &[u64]) -> Value {
        let frames: Vec<Value> = pcs
            .iter()
            .take_while(|&&pc| pc != 0)
            .map(|&pc| {
                let info = match kind {
                    StackKind::Kernel => self.symbols.lookup_kernel(pc),
                    StackKind::User { pid } => self.symbols.lookup_user(pid, pc),
                };
                let user = matches!(kind, StackKind::User { .. });
                frame_object(info, pc, user)
            })
            .collect();
        let key = if matches!(kind, StackKind::User { .. }) {
            "ustack-frames"
        } else {
            "stack-frames"
        };
        json!({ key: frames })
    }

    fn record_value(&self, rec: &Record) -> Option<Value> {
        Some(match rec {
            Record::Int { size, bits, .. } => {
                let v = match size {
                    8 | 4 => sign_extend(*size, *bits),
                    _ => *bits as i64,
                };
                json!({ "value": v })
            }
            Record::Float { value, .. } => json!({ "value": value }),
            Record::Bytes { data, force_raw } => {
                if *force_raw {
                    json!({ "tracemem": data })
                } else {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    json!({ "value": String::from_utf8_lossy(&data[..end]) })
                }
            }
            Record::Stack { kind, pcs, .. } => self.frames(*kind, pcs),
            Record::Sym(pc) => {
                let mut m = Map::new();
                m.insert(
                    "sym".into(),
                    json!(super::stack::kernel_sym_text(self.symbols, *pc)),
                );
                match self.symbols.lookup_kernel(*pc) {
                    Some(SymbolInfo {
                        object,
                        symbol: Some((name, _)),
                    }) => {
                        m.insert("object".into(), json!(object));
                        m.insert("name".into(), json!(name));
                    }
                    Some(SymbolInfo {
                        object,
                        symbol: None,
                    }) => {
                        m.insert("object".into(), json!(object));
                        m.insert("offset".into(), json!(format!("0x{pc:x}")));
                    }
                    None => {
                        m.insert("offset".into(), json!(format!("0x{pc:x}")));
                    }
                }
                Value::Object(m)
            }
            Record::Mod(pc) => json!({ "mod": super::stack::kernel_mod_text(self.symbols, *pc) }),
            Record::USym { pid, pc } => {
                json!({ "usym": super::stack::user_sym_text(self.symbols, *pid, *pc) })
            }
            Record::UMod { pid, pc } => {
                json!({ "umod": super::stack::user_mod_text(self.symbols, *pid, *pc) })
            }
            Record::UAddr { pid, pc } => {
                json!({ "uaddr": super::stack::user_addr_text(self.symbols, *pid, *pc) })
            }
            Record::Printf { .. } | Record::Exit(_) => return None,
        })
    }

    fn agg_object(&self, agg: &Aggregation, rows: &[Row<'_>], index: usize) -> Value {
        let data: Vec<Value> = rows
            .iter()
            .map(|row| {
                let keys: Vec<Value> = row
                    .key
                    .iter()
                    .filter_map(|k| self.record_value(k))
                    .collect();
                let mut m = Map::new();
                m.insert("keys".into(), Value::Array(keys));
                if let Some((kind, words, normal)) = row.values.get(index) {
                    m.extend(value_fields(*kind, words, *normal));
                }
                Value::Object(m)
            })
            .collect();
        json!({ "aggregation-data": data, "aggregation-name": agg.name })
    }
}

fn frame_object(info: Option<SymbolInfo>, pc: u64, user: bool) -> Value {
    let base = |o: &str| {
        if user {
            o.rsplit('/').next().unwrap_or(o).to_string()
        } else {
            o.to_string()
        }
    };
    match info {
        Some(SymbolInfo {
            object,
            symbol: Some((name, start)),
        }) => {
            let module = base(&object);
            let mut m = Map::new();
            let symbol = if pc > start {
                format!("{module}`{name}+0x{:x}", pc - start)
            } else {
                format!("{module}`{name}")
            };
            m.insert("symbol".into(), json!(symbol));
            m.insert("module".into(), json!(module));
            m.insert("name".into(), json!(name));
            if pc > start {
                m.insert("offset".into(), json!(format!("0x{:x}", pc - start)));
            }
            Value::Object(m)
        }
        Some(SymbolInfo {
            object,
            symbol: None,
        }) => {
            let module = base(&object);
            json!({ "symbol": format!("{module}`0x{pc:x}"), "module": module, "offset": format!("0x{pc:x}") })
        }
        None => json!({ "symbol": format!("0x{pc:x}"), "offset": format!("0x{pc:x}") }),
    }
}

fn value_fields(kind: AggKind, words: &[i64], normal: u64) -> Map<String, Value> {
    let mut m = Map::new();
    let normal = normal.max(1);
    let first = words.first().copied().unwrap_or(0);
    match kind {
        AggKind::Count => {
            m.insert("count".into(), json!((first as u64) / normal));
        }
        AggKind::Sum | AggKind::Min | AggKind::Max => {
            m.insert(kind.name().into(), json!(first / normal as i64));
        }
        AggKind::Avg => {
            m.insert("avg".into(), json!(aggregate::average(words, normal)));
        }
        AggKind::Stddev => {
            m.insert("stddev".into(), json!(aggregate::stddev(words, normal)));
        }
        _ => {
            let values = histogram::bucket_values(kind);
            let buckets: Vec<Value> = values
                .iter()
                .zip(words)
                .filter(|(_, &c)| c != 0)
                .map(|(&v, &c)| json!({ "value": v, "count": c / normal as i64 }))
                .collect();
            m.insert("buckets".into(), Value::Array(buckets));
        }
    }
    m
}

impl<O: Write, E: Write> OutputSink for JsonOutput<'_, O, E> {
    fn begin_probe(&mut self, p: &ProbeFiring, _next: Option<(u32, u32)>) -> io::Result<()> {
        self.last_timestamp = p.timestamp;
        let mut m = Map::new();
        m.insert("timestamp".into(), json!(p.timestamp));
        m.insert("cpu".into(), json!(p.cpu));
        m.insert("id".into(), json!(p.probe_id));
        m.insert("provider".into(), json!(p.provider));
        m.insert("module".into(), json!(p.module));
        m.insert("function".into(), json!(p.function));
        m.insert("name".into(), json!(p.name));
        m.insert("output".into(), Value::Array(Vec::new()));
        self.current = Some(m);
        Ok(())
    }

    fn record(&mut self, rec: &Record) -> io::Result<()> {
        if let Record::Printf { format, args } = rec {
            let ctx = RenderCtx {
                symbols: self.symbols,
                stackindent: self.opts.stackindent,
                target_pid: self.opts.target_pid,
                hist: self.opts.agg_options().hist,
            };
            let f =
                Format::parse(format).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut text = Vec::new();
            printf::render(&mut text, &f, args, &[], &ctx)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.push_output(json!({ "message": String::from_utf8_lossy(&text) }));
            if args.is_empty() {
                self.push_output(json!({ "value": 0 }));
            }
            for a in args {
                if let Some(v) = self.record_value(a) {
                    self.push_output(v);
                }
            }
            return Ok(());
        }
        if let Some(v) = self.record_value(rec) {
            self.push_output(v);
        }
        Ok(())
    }

    fn printa(&mut self, _format: Option<&str>, aggs: &[&Aggregation]) -> io::Result<()> {
        let opts = self.opts.agg_options();
        for (i, agg) in aggs.iter().enumerate() {
            let rows = if aggs.len() > 1 {
                aggregate::joined_rows(aggs, &opts)
            } else {
                aggregate::sorted_rows(&[*agg], &opts)
            };
            let v = self.agg_object(agg, &rows, if aggs.len() > 1 { i } else { 0 });
            self.push_output(v);
            self.printed.insert(agg.id);
        }
        Ok(())
    }

    fn end_probe(&mut self) -> io::Result<()> {
        if let Some(m) = self.current.take() {
            self.probes.push(Value::Object(m));
        }
        Ok(())
    }

    fn drop_event(&mut self, ev: &DropEvent) -> io::Result<()> {
        let msg = messages::drop_message(ev, self.opts.droptags);
        self.probes.push(json!({
            "cpu": ev.cpu.map(i64::from).unwrap_or(-1),
            "id": -1,
            "provider": "dtrace",
            "module": "INTERNAL",
            "function": "INTERNAL",
            "name": "DROP",
            "timestamp": self.last_timestamp,
            "count": ev.count,
            "total": ev.total,
            "kind": ev.kind.code(),
            "msg": msg,
        }));
        Ok(())
    }

    fn error_event(&mut self, ev: &ErrorEvent) -> io::Result<()> {
        self.err
            .write_all(format!("dtrace: {}", messages::error_message(ev)).as_bytes())
    }

    fn interrupted(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn end_of_run(&mut self, aggs: &[&Aggregation]) -> io::Result<()> {
        self.current = None;
        let opts = self.opts.agg_options();
        let mut pending: Vec<&Aggregation> = aggs
            .iter()
            .copied()
            .filter(|a| !self.printed.contains(&a.id))
            .collect();
        pending.sort_by_key(|a| a.id);
        for agg in pending {
            let rows = aggregate::sorted_rows(&[agg], &opts);
            let v = self.agg_object(agg, &rows, 0);
            self.aggregations.push(v);
        }
        Ok(())
    }

    fn set_options(&mut self, opts: OutputOptions) {
        self.opts = opts;
    }

    fn current_options(&self) -> OutputOptions {
        self.opts
    }

    fn finish(&mut self) -> io::Result<()> {
        let doc = self.document();
        if self.pretty {
            serde_json::to_writer_pretty(&mut self.out, &doc)?;
        } else {
            serde_json::to_writer(&mut self.out, &doc)?;
        }
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}
