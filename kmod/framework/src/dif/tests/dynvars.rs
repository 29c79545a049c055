//! Associative arrays and the dynamic variable arena's life cycle.

use super::*;
use crate::dif::abi::var_desc::{KIND_ARRAY, SCOPE_GLOBAL, SCOPE_THREAD};
use crate::dif::dynvar::{DynOp, KeyEntry};

const A: u16 = 0x500;

/// a[arg-key] = value (value 0 deletes); returns a[arg-key] afterwards.
fn store_int_key(scope: u8) -> Difo {
    // key in r1 (args[0]), value in r2 (args[1]).
    let (st, ld) = if scope == SCOPE_GLOBAL {
        (op::STGAA, op::LDGAA)
    } else {
        (op::STTAA, op::LDTAA)
    };
    let mut asm = Asm::new();
    asm.set(3, 0)
        .i(instr(op::LDGA, 0, 3, 1))
        .set(3, 1)
        .i(instr(op::LDGA, 0, 3, 2))
        .flush()
        .pushv(1)
        .i(imm(st, A, 2))
        .i(imm(ld, A, 4))
        .ret(4)
        .var(var(A, scope, KIND_ARRAY, ctf8()));
    asm.difo()
}

fn run_kv(h: &mut Harness, d: &Difo, key: u64, value: u64) -> u64 {
    let mut ctx = ExecContext::new(
        h.platform,
        &h.globals,
        &h.locals,
        &h.arena,
        &mut h.scratch,
        &mut h.hooks,
    );
    ctx.probe.args = [key, value, 0, 0, 0];
    ctx.thread.tid = h.tid;
    execute(d, &mut ctx).unwrap()
}

#[test]
fn associative_store_load_delete() {
    let d = store_int_key(SCOPE_GLOBAL);
    let mut h = Harness::new(&[&d]);
    assert_eq!(run_kv(&mut h, &d, 1, 100), 100);
    assert_eq!(run_kv(&mut h, &d, 2, 200), 200);
    // Reading key 1 back with a "store" of the same value keeps it.
    assert_eq!(run_kv(&mut h, &d, 1, 101), 101);
    let (free_before, dirty_before, _, _) = h.arena.list_lengths();
    // Storing 0 deletes.
    assert_eq!(run_kv(&mut h, &d, 1, 0), 0);
    let (free_after, dirty_after, _, _) = h.arena.list_lengths();
    assert_eq!(free_after, free_before);
    assert_eq!(dirty_after, dirty_before + 1);
    assert_eq!(run_kv(&mut h, &d, 2, 200), 200, "other keys are untouched");
}

#[test]
fn thread_local_associative_arrays_are_per_thread() {
    let d = store_int_key(SCOPE_THREAD);
    let mut h = Harness::new(&[&d]);
    assert_eq!(run_kv(&mut h, &d, 5, 50), 50);
    h.tid = 999;
    // Load-only program: a thread-local array read in another thread.
    let mut asm = Asm::new();
    asm.set(1, 5)
        .flush()
        .pushv(1)
        .i(imm(op::LDTAA, A, 2))
        .ret(2);
    asm.var(var(A, SCOPE_THREAD, KIND_ARRAY, ctf8()));
    let ld = asm.difo();
    assert_eq!(h.ok(&ld), 0);
    h.tid = 100;
    assert_eq!(h.ok(&ld), 50);
}

#[test]
fn string_keys_compare_by_content() {
    // a["k1", 7] = 5 via one string constant; read with an identical string
    // stored elsewhere (a different address).
    let decl = var(A, SCOPE_GLOBAL, KIND_ARRAY, ctf8());
    let mut st = Asm::new();
    st.sets(1, "k1")
        .set(2, 7)
        .set(3, 5)
        .flush()
        .pushs(1)
        .pushv(2)
        .i(imm(op::STGAA, A, 3))
        .ret(0);
    st.var(decl);
    let st = st.difo();
    let mut ld = Asm::new();
    ld.sets(6, "padding")
        .sets(1, "k1")
        .set(2, 7)
        .flush()
        .pushs(1)
        .pushv(2);
    ld.i(imm(op::LDGAA, A, 3)).ret(3).var(decl);
    let ld = ld.difo();
    let mut other = Asm::new();
    other
        .sets(1, "k2")
        .set(2, 7)
        .flush()
        .pushs(1)
        .pushv(2)
        .i(imm(op::LDGAA, A, 3))
        .ret(3)
        .var(decl);
    let other = other.difo();
    let mut h = Harness::new(&[&st, &ld, &other]);
    h.ok(&st);
    assert_eq!(h.ok(&ld), 5);
    assert_eq!(h.ok(&other), 0);
}

#[test]
fn string_values_in_associative_arrays() {
    let decl = var(A, SCOPE_GLOBAL, KIND_ARRAY, string_type(16));
    let mut asm = Asm::new();
    asm.set(1, 3)
        .sets(2, "stored string")
        .flush()
        .pushv(1)
        .i(imm(op::STGAA, A, 2));
    asm.i(imm(op::LDGAA, A, 4))
        .ret(4)
        .var(decl)
        .returns(string_type(16));
    let d = asm.difo();
    assert_eq!(Harness::new(&[&d]).string(&d), "stored string");
}

#[test]
fn exhaustion_and_the_dirty_rinsing_clean_cycle() {
    let d = store_int_key(SCOPE_GLOBAL);
    // Room for exactly four 64-byte chunks (chunk + header + bucket = 88).
    let p = default_platform();
    let mut h = Harness::with_platform(p, &[&d], 4 * 88, 64);
    assert_eq!(h.arena.chunk_count(), 4);
    for k in 1..=4 {
        assert_eq!(run_kv(&mut h, &d, k, k * 10), k * 10);
    }
    // Fifth key: nothing free, nothing dirty -> dyndrops; reads as 0.
    assert_eq!(run_kv(&mut h, &d, 5, 50), 0);
    assert_eq!(h.arena.drops(), 1);
    // Delete one: the chunk is dirty, not yet reusable. The reason found
    // at the first failure (empty) sticks until a cleaning pass, as
    // FreeBSD's dtds_state does: this failure is a dyndrop too.
    assert_eq!(run_kv(&mut h, &d, 1, 0), 0);
    assert_eq!(run_kv(&mut h, &d, 5, 50), 0);
    assert_eq!(h.arena.drops(), 2);
    assert_eq!(h.arena.drops_dirty(), 0);
    assert_eq!(h.arena.list_lengths(), (0, 1, 0, 0));
    // One cleaning pass syncs the CPUs (before and after rinsing) and
    // makes the chunk clean.
    let syncs = p.syncs.load(Ordering::Relaxed);
    h.arena.clean();
    assert_eq!(p.syncs.load(Ordering::Relaxed), syncs + 2);
    assert_eq!(h.arena.list_lengths(), (0, 0, 0, 1));
    assert_eq!(run_kv(&mut h, &d, 5, 50), 50, "a clean chunk is reused");
    assert_eq!(h.arena.drops(), 2);
    assert_eq!(h.arena.list_lengths(), (0, 0, 0, 0));
    // After cleaning the reason is found anew: a dirty chunk makes the
    // next failure a dirty drop, and it stays one.
    assert_eq!(run_kv(&mut h, &d, 2, 0), 0);
    assert_eq!(run_kv(&mut h, &d, 6, 60), 0);
    assert_eq!(run_kv(&mut h, &d, 7, 70), 0);
    assert_eq!(h.arena.drops_dirty(), 2);
    assert_eq!(h.arena.drops(), 2);
    h.arena.clean();
    assert_eq!(p.syncs.load(Ordering::Relaxed), syncs + 4);
    // A cleaning pass with nothing dirty does not sync.
    h.arena.clean();
    assert_eq!(p.syncs.load(Ordering::Relaxed), syncs + 4);
    assert_eq!(h.arena.drops_rinsing(), 0);
}

#[test]
fn rinsing_drops_are_counted() {
    let p = default_platform();
    let arena = DynVarArena::new(p, 2 * 88, 64, 1).unwrap();
    let mut read = |_a: u64, _b: &mut [u8]| -> Result<(), Fault> { Ok(()) };
    let key = |v: u64| [KeyEntry { value: v, size: 0 }];
    assert!(arena
        .find(0, &key(1), 8, DynOp::Alloc, &mut read)
        .unwrap()
        .is_some());
    assert!(arena
        .find(0, &key(2), 8, DynOp::Alloc, &mut read)
        .unwrap()
        .is_some());
    assert!(arena
        .find(0, &key(1), 8, DynOp::Delete, &mut read)
        .unwrap()
        .is_none());
    assert!(arena
        .find(0, &key(1), 8, DynOp::Lookup, &mut read)
        .unwrap()
        .is_none());
    // Simulate the cleaner's first half by hand: move dirty to rinsing.
    arena.begin_rinse_for_test();
    assert!(arena
        .find(0, &key(3), 8, DynOp::Alloc, &mut read)
        .unwrap()
        .is_none());
    assert_eq!(arena.drop_counts().dyndrops_rinsing, 1);
}

#[test]
fn keys_too_large_for_a_chunk_are_dropped() {
    let decl = var(A, SCOPE_GLOBAL, KIND_ARRAY, ctf8());
    let long = "x".repeat(200);
    let mut asm = Asm::new();
    asm.sets(1, &long)
        .set(2, 1)
        .flush()
        .pushs(1)
        .i(imm(op::STGAA, A, 2));
    asm.i(imm(op::LDGAA, A, 3)).ret(3).var(decl);
    let d = asm.difo();
    let mut h = Harness::with_platform(default_platform(), &[&d], 64 * 1024, 64);
    assert_eq!(h.ok(&d), 0);
    assert_eq!(h.arena.drops(), 1);
}

#[test]
fn many_keys_and_cpus() {
    let p = default_platform();
    let arena = DynVarArena::new(p, 1 << 16, 64, 4).unwrap();
    let mut read = |_a: u64, _b: &mut [u8]| -> Result<(), Fault> { Ok(()) };
    let n = arena.chunk_count() as u64;
    let mut addrs = std::collections::HashSet::new();
    for k in 0..n {
        let cpu = (k % 4) as usize;
        let a = arena
            .find(
                cpu,
                &[KeyEntry { value: k, size: 0 }],
                8,
                DynOp::Alloc,
                &mut read,
            )
            .unwrap();
        assert!(
            addrs.insert(a.unwrap()),
            "every variable gets its own chunk"
        );
    }
    // All chunks are in use now, stolen across CPU free lists.
    assert!(arena
        .find(
            0,
            &[KeyEntry { value: n, size: 0 }],
            8,
            DynOp::Alloc,
            &mut read
        )
        .unwrap()
        .is_none());
    for k in 0..n {
        let a = arena
            .find(
                3,
                &[KeyEntry { value: k, size: 0 }],
                8,
                DynOp::Lookup,
                &mut read,
            )
            .unwrap();
        assert!(a.is_some(), "key {k} is still there");
    }
}

#[test]
fn concurrent_cpus_and_cleaner() {
    let p = default_platform();
    let arena: &'static DynVarArena =
        Box::leak(Box::new(DynVarArena::new(p, 64 * 88, 64, 4).unwrap()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cleaner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut passes = 0u32;
            while !stop.load(Ordering::Relaxed) {
                arena.clean();
                passes += 1;
                std::thread::yield_now();
            }
            passes
        })
    };
    let workers: Vec<_> = (0..4u64)
        .map(|cpu| {
            std::thread::spawn(move || {
                let mut read = |_a: u64, _b: &mut [u8]| -> Result<(), Fault> { Ok(()) };
                let mut ok = 0u32;
                for round in 0..3000u64 {
                    // Each "CPU" owns keys cpu*1000 .. cpu*1000+8.
                    let k = [KeyEntry {
                        value: cpu * 1000 + round % 8,
                        size: 0,
                    }];
                    // None: dropped (and counted).
                    if let Some(addr) = arena
                        .find(cpu as usize, &k, 8, DynOp::Alloc, &mut read)
                        .unwrap()
                    {
                        let off = (addr - arena.data_range().0) as usize;
                        let v = cpu << 32 | round;
                        assert!(arena.write(off, &v.to_ne_bytes()));
                        let mut back = [0u8; 8];
                        assert!(arena.read(off, &mut back));
                        assert_eq!(u64::from_ne_bytes(back), v, "nobody else touched our chunk");
                        ok += 1;
                    }
                    if round % 3 == 0 {
                        arena
                            .find(cpu as usize, &k, 8, DynOp::Delete, &mut read)
                            .unwrap();
                    }
                }
                ok
            })
        })
        .collect();
    let stored: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let passes = cleaner.join().unwrap();
    assert!(passes > 0);
    let drops = arena.drop_counts();
    let total_drops = drops.dyndrops + drops.dyndrops_dirty + drops.dyndrops_rinsing;
    // Every allocation either succeeded (new chunk or existing key) or was
    // counted as exactly one kind of drop.
    assert_eq!(u64::from(stored) + total_drops, 4 * 3000);
    // After a final clean every chunk is either live or back on a list.
    arena.clean();
    let (free, dirty, rinsing, clean) = arena.list_lengths();
    let live = {
        let mut read = |_a: u64, _b: &mut [u8]| -> Result<(), Fault> { Ok(()) };
        let mut n = 0;
        for cpu in 0..4u64 {
            for k in 0..8 {
                let key = [KeyEntry {
                    value: cpu * 1000 + k,
                    size: 0,
                }];
                if arena
                    .find(0, &key, 8, DynOp::Lookup, &mut read)
                    .unwrap()
                    .is_some()
                {
                    n += 1;
                }
            }
        }
        n
    };
    assert_eq!(dirty + rinsing, 0);
    assert_eq!(free + clean + live, arena.chunk_count(), "no chunk leaked");
}
