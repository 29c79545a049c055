//! Compile-time benchmark: a generated 1,000-clause D script through the whole pipeline
//! (lex, parse, type check, DIF generation, DOF emission). Target: at most 100 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use rdtrace_libdtrace::compiler::{compile, CompileOptions};

/// A script with `n` clauses mixing predicates, variables, strings, printf and aggregations.
pub fn generated_script(n: usize) -> String {
    let mut s = String::from("#pragma D option quiet\nint total;\n");
    for i in 0..n {
        match i % 4 {
            0 => s.push_str(&format!(
                "tick-{}ms\n/total < {} && pid != 0/\n{{\n\tself->t{} = timestamp;\n\ttotal += {};\n\tprintf(\"%d %s %d\\n\", total, execname, self->t{});\n}}\n",
                i % 50 + 1, i * 3, i, i, i
            )),
            1 => s.push_str(&format!(
                "BEGIN\n{{\n\t@c{}[probename, cpu] = count();\n\t@q{} = quantize(total * {} + 1);\n}}\n",
                i, i, i
            )),
            2 => s.push_str(&format!(
                "profile-{}\n/arg0 != 0/\n{{\n\tx{} = strjoin(probefunc, \"-{}\");\n\ta{}[x{}] = arg0 > {} ? arg0 : -arg0;\n\ttrace(a{}[x{}]);\n}}\n",
                97, i, i, i, i, i, i, i
            )),
            _ => s.push_str(&format!(
                "END\n{{\n\tthis->v = total % {} << 2 | 1;\n\t@s{} = sum(this->v);\n\tprinta(\"%@d\\n\", @s{});\n}}\n",
                i + 1, i, i
            )),
        }
    }
    s
}

fn bench_compile(c: &mut Criterion) {
    let src = generated_script(1000);
    let opts = CompileOptions::default();
    // Fail loudly if the script stops compiling: a benchmark of an error path measures nothing.
    let p = compile(&src, &opts).expect("generated script compiles");
    assert_eq!(p.ecbs.len(), 1000);
    c.bench_function("compile 1000 clauses", |b| {
        b.iter(|| compile(&src, &opts).expect("compiles"))
    });
}

criterion_group!(benches, bench_compile);
criterion_main!(benches);
