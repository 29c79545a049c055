//! Combining aggregation data the way libdtrace's snapshot does: per-kind
//! merge of value words (per-CPU buffers of one key add up; min/max keep the
//! extreme), and the key canonicalisation of `sym()`/`usym()` (address moved
//! to the symbol start) and `mod()`/`umod()` (one entry per module) that
//! makes different PCs of one function aggregate together. The consumer
//! calls these while building an [`Aggregation`] snapshot. Not probe
//! context.

use super::model::{AggEntry, AggKind, Aggregation, Record};
use super::stack::{self, Symbolizer};

/// Merges `new` into `existing` for an aggregation of `kind`.
pub fn combine(kind: AggKind, existing: &mut Vec<i64>, new: &[i64]) {
    if existing.len() < new.len() {
        existing.resize(new.len(), 0);
    }
    match kind {
        AggKind::Min => {
            if let (Some(e), Some(&n)) = (existing.first_mut(), new.first()) {
                *e = (*e).min(n);
            }
        }
        AggKind::Max => {
            if let (Some(e), Some(&n)) = (existing.first_mut(), new.first()) {
                *e = (*e).max(n);
            }
        }
        AggKind::Stddev => {
            // count, sum, then a 128-bit sum of squares (lo, hi).
            for i in 0..2 {
                if let (Some(e), Some(&n)) = (existing.get_mut(i), new.get(i)) {
                    *e = e.wrapping_add(n);
                }
            }
            let get = |v: &[i64], i: usize| v.get(i).copied().unwrap_or(0) as u64;
            let a = (u128::from(get(existing, 3)) << 64) | u128::from(get(existing, 2));
            let b = (u128::from(get(new, 3)) << 64) | u128::from(get(new, 2));
            let s = a.wrapping_add(b);
            if existing.len() >= 4 {
                existing[2] = s as u64 as i64;
                existing[3] = (s >> 64) as u64 as i64;
            }
        }
        _ => {
            for (e, &n) in existing.iter_mut().zip(new) {
                *e = e.wrapping_add(n);
            }
        }
    }
}

/// Adds an entry to a snapshot, merging with an equal key.
pub fn add_entry(agg: &mut Aggregation, key: Vec<Record>, value: &[i64]) {
    if let Some(e) = agg.entries.iter_mut().find(|e| e.key == key) {
        combine(agg.kind, &mut e.value, value);
    } else {
        agg.entries.push(AggEntry {
            key,
            value: value.to_vec(),
        });
    }
}

/// Canonical form of a symbolic key record.
fn canonical(r: &Record, sym: &dyn Symbolizer) -> Record {
    match r {
        Record::Sym(pc) => match sym.lookup_kernel(*pc).and_then(|i| i.symbol) {
            Some((_, start)) => Record::Sym(start),
            None => r.clone(),
        },
        Record::USym { pid, pc } => match sym.lookup_user(*pid, *pc).and_then(|i| i.symbol) {
            Some((_, start)) => Record::USym {
                pid: *pid,
                pc: start,
            },
            None => r.clone(),
        },
        _ => r.clone(),
    }
}

/// Whether two keys name the same thing once symbols are resolved
/// (`mod()`/`umod()` keys compare by module).
fn same_key(a: &[Record], b: &[Record], sym: &dyn Symbolizer) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Record::Mod(p), Record::Mod(q)) => {
                stack::kernel_mod_text(sym, *p) == stack::kernel_mod_text(sym, *q)
            }
            (Record::UMod { pid: a, pc: p }, Record::UMod { pid: b, pc: q }) => {
                a == b && stack::user_mod_text(sym, *a, *p) == stack::user_mod_text(sym, *b, *q)
            }
            _ => x == y,
        })
}

/// Rewrites `sym()`/`usym()` keys to their symbol start and merges entries
/// whose keys then coincide (including `mod()`/`umod()` keys of one module).
pub fn merge_symbolic_keys(agg: &mut Aggregation, sym: &dyn Symbolizer) {
    let entries = std::mem::take(&mut agg.entries);
    for e in entries {
        let key: Vec<Record> = e.key.iter().map(|r| canonical(r, sym)).collect();
        if let Some(existing) = agg.entries.iter_mut().find(|x| same_key(&x.key, &key, sym)) {
            combine(agg.kind, &mut existing.value, &e.value);
        } else {
            agg.entries.push(AggEntry {
                key,
                value: e.value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::stack::SymbolInfo;

    struct Syms;
    impl Symbolizer for Syms {
        fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
            (0x100..0x200).contains(&pc).then(|| SymbolInfo {
                object: "kernel".into(),
                symbol: Some(("f".into(), 0x100)),
            })
        }
        fn lookup_user(&self, _pid: u64, _pc: u64) -> Option<SymbolInfo> {
            None
        }
    }

    #[test]
    fn combines_by_kind() {
        let mut v = vec![5];
        combine(AggKind::Min, &mut v, &[3]);
        assert_eq!(v, vec![3]);
        combine(AggKind::Max, &mut v, &[9]);
        assert_eq!(v, vec![9]);
        let mut sd = vec![1, 2, -1, 0];
        combine(AggKind::Stddev, &mut sd, &[1, 2, 1, 0]);
        assert_eq!(sd, vec![2, 4, 0, 1]);
        let mut q = vec![1, 2, 3];
        combine(AggKind::Quantize, &mut q, &[1, 1, 1]);
        assert_eq!(q, vec![2, 3, 4]);
    }

    #[test]
    fn sym_keys_collapse_to_function() {
        let mut a = Aggregation {
            id: 1,
            name: "_".into(),
            kind: AggKind::Count,
            normal: 1,
            entries: vec![
                AggEntry {
                    key: vec![Record::Sym(0x104)],
                    value: vec![2],
                },
                AggEntry {
                    key: vec![Record::Sym(0x1f0)],
                    value: vec![3],
                },
                AggEntry {
                    key: vec![Record::Sym(0x900)],
                    value: vec![1],
                },
                AggEntry {
                    key: vec![Record::Mod(0x104)],
                    value: vec![1],
                },
                AggEntry {
                    key: vec![Record::Mod(0x150)],
                    value: vec![1],
                },
            ],
        };
        merge_symbolic_keys(&mut a, &Syms);
        assert_eq!(a.entries.len(), 3);
        assert_eq!(
            a.entries[0],
            AggEntry {
                key: vec![Record::Sym(0x100)],
                value: vec![5]
            }
        );
        assert_eq!(a.entries[2].value, vec![2]);
        add_entry(&mut a, vec![Record::Sym(0x100)], &[1]);
        assert_eq!(a.entries[0].value, vec![6]);
    }
}
