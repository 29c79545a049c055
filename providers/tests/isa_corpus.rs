//! The fbt decoders against real machine code: a C corpus (tests/corpus) is
//! compiled with clang for x86_64, aarch64 and riscv64 at -O0 and -O2, with
//! and without frame pointers (plus CET/BTI landing pads), linked with
//! ld.lld, and every function's decoded entry site, return sites and (x86_64,
//! riscv64) instruction boundaries are compared with what llvm-objdump's
//! independent disassembly says they must be.
//!
//! Needs clang, ld.lld and llvm-objdump (installed by scripts/setup.sh); the
//! test fails with a message naming the missing tool otherwise.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use rdtrace_providers::fbt::isa::aarch64::{A64Emulation, Aarch64};
use rdtrace_providers::fbt::isa::riscv64::{self, Riscv64, RvEmulation};
use rdtrace_providers::fbt::isa::x86_64::{self, X86Emulation, X86Reg, X86_64};
use rdtrace_providers::fbt::isa::{Isa, PatchSite, SiteKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/functions.c");

fn find_tool(candidates: &[&str]) -> PathBuf {
    for name in candidates {
        if let Ok(out) = Command::new(name).arg("--version").output() {
            if out.status.success() {
                return PathBuf::from(name);
            }
        }
    }
    panic!(
        "isa_corpus: none of {candidates:?} is installed; the fbt decoder tests need clang, \
         ld.lld and llvm-objdump (run scripts/setup.sh)"
    );
}

struct Tools {
    clang: PathBuf,
    lld: PathBuf,
    objdump: PathBuf,
}

fn tools() -> Tools {
    Tools {
        clang: find_tool(&["clang", "clang-14", "clang-19", "clang-22"]),
        lld: find_tool(&["ld.lld", "ld.lld-19", "ld.lld-22"]),
        objdump: find_tool(&["llvm-objdump", "llvm-objdump-14", "llvm-objdump-19"]),
    }
}

/// Compiler flag sets per architecture: optimisation × frame pointers, plus
/// one variant with control-flow-integrity landing pads.
fn variants(arch: &str) -> Vec<(String, Vec<&'static str>)> {
    let mut out = Vec::new();
    for opt in ["-O0", "-O2"] {
        for fp in ["-fno-omit-frame-pointer", "-fomit-frame-pointer"] {
            out.push((format!("{}{fp}", &opt[1..]), vec![opt, fp]));
        }
    }
    match arch {
        "x86_64" => out.push(("O2-cet".into(), vec!["-O2", "-fcf-protection=full"])),
        "aarch64" => out.push((
            "O2-bti-pac".into(),
            vec!["-O2", "-mbranch-protection=standard"],
        )),
        _ => out.push((
            "O2-fp-leaf".into(),
            vec![
                "-O2",
                "-fno-omit-frame-pointer",
                "-mno-omit-leaf-frame-pointer",
            ],
        )),
    }
    out
}

fn build(tools: &Tools, arch: &str, name: &str, flags: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("isa_corpus");
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dir.join(format!("{arch}-{name}.o"));
    let so = dir.join(format!("{arch}-{name}.so"));
    let mut cc = Command::new(&tools.clang);
    cc.arg(format!("--target={arch}-unknown-freebsd"))
        .args([
            "-ffreestanding",
            "-fno-asynchronous-unwind-tables",
            "-fPIC",
            "-fvisibility=hidden",
        ])
        .args(flags)
        .args(["-c", CORPUS, "-o"])
        .arg(&obj);
    if arch == "riscv64" {
        cc.args(["-march=rv64gc", "-mabi=lp64d"]);
    }
    let status = cc.status().unwrap();
    assert!(status.success(), "clang failed for {arch} {name}");
    let status = Command::new(&tools.lld)
        .args(["-shared", "-o"])
        .arg(&so)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(status.success(), "ld.lld failed for {arch} {name}");
    so
}

/// One disassembled instruction: mnemonic and operand text, whitespace-normalised.
#[derive(Debug, Clone)]
struct Insn {
    mnemonic: String,
    operands: String,
}

fn disassemble(tools: &Tools, arch: &str, so: &Path) -> BTreeMap<u64, Insn> {
    let mut cmd = Command::new(&tools.objdump);
    cmd.args(["-d", "--no-show-raw-insn"]);
    if arch == "riscv64" {
        cmd.args(["-M", "no-aliases", "--mattr=+c"]);
    }
    let out = cmd.arg(so).output().unwrap();
    assert!(
        out.status.success(),
        "llvm-objdump failed on {}",
        so.display()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((addr, rest)) = line.split_once(':') else {
            continue;
        };
        let addr = addr.trim();
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit()) || line.ends_with(">:") {
            continue;
        }
        let comment = if arch == "x86_64" { "#" } else { "//" };
        let rest = rest.split(comment).next().unwrap().trim();
        let mut parts = rest.splitn(2, char::is_whitespace);
        let mnemonic = parts.next().unwrap_or("").to_string();
        let operands = parts
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if mnemonic.is_empty() {
            continue;
        }
        map.insert(
            u64::from_str_radix(addr, 16).unwrap(),
            Insn { mnemonic, operands },
        );
    }
    map
}

struct Function {
    name: String,
    addr: u64,
    bytes: Vec<u8>,
}

fn functions(so: &Path) -> Vec<Function> {
    let data = std::fs::read(so).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let text = file.section_by_name(".text").unwrap();
    let text_data = text.data().unwrap();
    let mut out = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let start = (sym.address() - text.address()) as usize;
        out.push(Function {
            name: sym.name().unwrap().to_string(),
            addr: sym.address(),
            bytes: text_data[start..start + sym.size() as usize].to_vec(),
        });
    }
    assert!(
        out.len() >= 15,
        "{}: expected the corpus functions, found {}",
        so.display(),
        out.len()
    );
    out
}

fn instructions_of<'a>(dis: &'a BTreeMap<u64, Insn>, f: &Function) -> Vec<(u64, &'a Insn)> {
    dis.range(f.addr..f.addr + f.bytes.len() as u64)
        .map(|(a, i)| (*a, i))
        .collect()
}

/// The hex target of a direct branch as objdump prints it (`0x1234 <sym>`).
fn branch_target(operands: &str) -> Option<u64> {
    let word = operands.split_whitespace().find(|w| w.starts_with("0x"))?;
    u64::from_str_radix(word.trim_start_matches("0x"), 16).ok()
}

fn outside(f: &Function, target: u64) -> bool {
    target < f.addr || target >= f.addr + f.bytes.len() as u64
}

fn parse_imm(text: &str) -> i64 {
    let t = text.trim().trim_start_matches(['$', '#']);
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = match t.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
        None => t.parse::<i64>().unwrap(),
    };
    if neg {
        -v
    } else {
        v
    }
}

#[derive(Default)]
struct Tally {
    functions: usize,
    with_entry: usize,
    returns: usize,
    tail_calls: usize,
}

fn collect_returns<I: Isa>(f: &Function) -> Vec<PatchSite<I::Emulation>> {
    let mut sites = Vec::new();
    let n = I::find_returns(&f.bytes, f.addr, &mut |s| sites.push(s));
    assert_eq!(n, sites.len());
    for s in &sites {
        assert_eq!(s.kind, SiteKind::Return);
        assert_eq!(s.addr, f.addr + u64::from(s.offset));
        assert_eq!(
            &f.bytes[s.offset as usize..s.offset as usize + s.original.width as usize],
            &s.original.bytes()[..s.original.width as usize],
            "{}: original bytes of the site at +{:#x}",
            f.name,
            s.offset
        );
    }
    sites
}

// ---------------------------------------------------------------- x86_64

fn x86_reg(name: &str) -> X86Reg {
    let names = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let i = names
        .iter()
        .position(|n| *n == name.trim_start_matches('%'))
        .unwrap_or_else(|| panic!("register {name}"));
    X86Reg::GPRS[i]
}

fn x86_expected_entry(insns: &[(u64, &Insn)]) -> Option<(u64, X86Emulation)> {
    let (addr, insn) = insns.iter().find(|(_, i)| i.mnemonic != "endbr64")?;
    let m = insn.mnemonic.as_str();
    let ops = insn.operands.as_str();
    let emulation = match m {
        "pushq" | "push" if ops.starts_with('%') => X86Emulation::Push(x86_reg(ops)),
        "movq" | "mov" if ops == "%rsp, %rbp" => X86Emulation::MovRspRbp,
        "subq" | "sub" if ops.ends_with(", %rsp") && ops.starts_with('$') => {
            X86Emulation::SubRsp(parse_imm(ops.split(',').next().unwrap()) as i32)
        }
        "callq" | "call" if ops.starts_with("0x") => {
            X86Emulation::Call(branch_target(ops).unwrap())
        }
        _ if m.starts_with("nop") => X86Emulation::Nop,
        _ => return None,
    };
    Some((*addr, emulation))
}

fn check_x86(f: &Function, insns: &[(u64, &Insn)], tally: &mut Tally) {
    // Instruction boundaries: the decoder walks exactly objdump's instructions.
    let mut walked = Vec::new();
    let len = x86_64::walk_instructions(&f.bytes, f.addr, &mut |offset, _| {
        walked.push(f.addr + offset as u64);
        true
    });
    let expected: Vec<u64> = insns.iter().map(|(a, _)| *a).collect();
    assert_eq!(walked, expected, "{}: instruction boundaries", f.name);
    assert_eq!(
        len,
        f.bytes.len(),
        "{}: walk must cover the function",
        f.name
    );

    let entry = X86_64::find_entry(&f.bytes, f.addr);
    let want = x86_expected_entry(insns);
    assert_eq!(
        entry.map(|s| (s.addr, s.emulation)),
        want,
        "{}: entry site",
        f.name
    );
    if let Some(site) = entry {
        assert_eq!(site.patch.bits, 0xCC);
        assert_eq!(site.original.width, 1);
        let (_, insn) = insns.iter().find(|(a, _)| *a == site.addr).unwrap();
        let next = insns
            .iter()
            .map(|(a, _)| *a)
            .find(|a| *a > site.addr)
            .unwrap_or(f.addr + f.bytes.len() as u64);
        assert_eq!(
            u64::from(site.len),
            next - site.addr,
            "{}: length of {}",
            f.name,
            insn.mnemonic
        );
        tally.with_entry += 1;
    }

    let mut want_returns = Vec::new();
    for (addr, insn) in insns {
        let m = insn.mnemonic.as_str();
        if m == "retq" || m == "ret" {
            let extra = if insn.operands.is_empty() {
                0
            } else {
                parse_imm(&insn.operands) as u16
            };
            want_returns.push((*addr, X86Emulation::Ret(extra)));
        } else if m == "jmp" || m == "jmpq" {
            if let Some(target) = branch_target(&insn.operands)
                .filter(|t| !insn.operands.starts_with('*') && outside(f, *t))
            {
                want_returns.push((*addr, X86Emulation::Jmp(target)));
            }
        }
    }
    let got: Vec<(u64, X86Emulation)> = collect_returns::<X86_64>(f)
        .iter()
        .map(|s| (s.addr, s.emulation))
        .collect();
    assert_eq!(got, want_returns, "{}: return sites", f.name);
    assert!(
        !got.is_empty(),
        "{}: every corpus function returns somewhere",
        f.name
    );
    tally.returns += got.len();
    tally.tail_calls += got
        .iter()
        .filter(|(_, e)| matches!(e, X86Emulation::Jmp(_)))
        .count();
}

// ---------------------------------------------------------------- aarch64

fn a64_reg(name: &str) -> u8 {
    match name.trim() {
        "xzr" => 31,
        "fp" => 29,
        "lr" => 30,
        r => r
            .strip_prefix('x')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("register {r}")),
    }
}

const A64_LANDING_PADS: [&str; 3] = ["bti", "paciasp", "pacibsp"];
const A64_LANDING_HINTS: [&str; 5] = ["#25", "#27", "#34", "#36", "#38"];

fn a64_is_branch(m: &str) -> bool {
    matches!(
        m,
        "b" | "bl"
            | "br"
            | "blr"
            | "ret"
            | "cbz"
            | "cbnz"
            | "tbz"
            | "tbnz"
            | "brk"
            | "svc"
            | "eret"
            | "retaa"
            | "retab"
    ) || m.starts_with("b.")
}

fn a64_expected_entry(insns: &[(u64, &Insn)]) -> Option<(u64, A64Emulation)> {
    let mut iter = insns
        .iter()
        .skip_while(|(_, i)| {
            A64_LANDING_PADS.contains(&i.mnemonic.as_str())
                || (i.mnemonic == "hint" && A64_LANDING_HINTS.contains(&i.operands.as_str()))
        })
        .peekable();
    if iter
        .peek()
        .map(|(_, i)| i.mnemonic == "nop")
        .unwrap_or(true)
    {
        return None;
    }
    for (addr, insn) in iter {
        let ops = insn.operands.as_str();
        if insn.mnemonic == "stp"
            && ops.contains("[sp, #")
            && ops.ends_with("]!")
            && ops.starts_with('x')
        {
            let mut regs = ops.split(", ");
            let rt = a64_reg(regs.next().unwrap());
            let rt2 = a64_reg(regs.next().unwrap());
            let imm = parse_imm(ops.split("#").nth(1).unwrap().trim_end_matches("]!"));
            return Some((
                *addr,
                A64Emulation::StpPreIndex {
                    rt,
                    rt2,
                    offset: imm as i32,
                },
            ));
        }
        if insn.mnemonic == "str"
            && ops.starts_with('x')
            && ops.contains(", [sp, #")
            && ops.ends_with("]!")
        {
            let rt = a64_reg(ops.split(", ").next().unwrap());
            let imm = parse_imm(ops.split('#').nth(1).unwrap().trim_end_matches("]!"));
            return Some((
                *addr,
                A64Emulation::StrPreIndex {
                    rt,
                    offset: imm as i32,
                },
            ));
        }
        if insn.mnemonic == "sub" && ops.starts_with("sp, sp, #") {
            let rest = &ops["sp, sp, ".len()..];
            let mut parts = rest.split(", ");
            let mut amount = parse_imm(parts.next().unwrap()) as u32;
            if parts.next() == Some("lsl #12") {
                amount <<= 12;
            }
            return Some((*addr, A64Emulation::SubSp { amount }));
        }
        if a64_is_branch(&insn.mnemonic) {
            return None;
        }
    }
    None
}

fn check_a64(f: &Function, insns: &[(u64, &Insn)], tally: &mut Tally) {
    assert_eq!(
        insns.len() * 4,
        f.bytes.len(),
        "{}: objdump instruction count",
        f.name
    );
    let entry = Aarch64::find_entry(&f.bytes, f.addr);
    assert_eq!(
        entry.map(|s| (s.addr, s.emulation)),
        a64_expected_entry(insns),
        "{}: entry site",
        f.name
    );
    if let Some(site) = entry {
        assert_eq!(
            (site.patch.bits, site.patch.width, site.len),
            (0xD420_81A0, 4, 4)
        );
        tally.with_entry += 1;
    }
    let mut want = Vec::new();
    for (addr, insn) in insns {
        if insn.mnemonic == "ret" {
            let rn = if insn.operands.is_empty() {
                30
            } else {
                a64_reg(&insn.operands)
            };
            want.push((*addr, A64Emulation::Ret { rn }));
        } else if insn.mnemonic == "b" {
            let target = branch_target(&insn.operands).unwrap();
            if outside(f, target) {
                want.push((*addr, A64Emulation::B { target }));
            }
        }
    }
    let got: Vec<_> = collect_returns::<Aarch64>(f)
        .iter()
        .map(|s| (s.addr, s.emulation))
        .collect();
    assert_eq!(got, want, "{}: return sites", f.name);
    assert!(
        !got.is_empty(),
        "{}: every corpus function returns somewhere",
        f.name
    );
    tally.returns += got.len();
    tally.tail_calls += got
        .iter()
        .filter(|(_, e)| matches!(e, A64Emulation::B { .. }))
        .count();
}

// ---------------------------------------------------------------- riscv64

fn rv_reg(name: &str) -> u8 {
    let abi = [
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
        "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
        "t5", "t6",
    ];
    abi.iter()
        .position(|n| *n == name.trim())
        .unwrap_or_else(|| panic!("register {name}")) as u8
}

fn rv_is_control(m: &str) -> bool {
    matches!(
        m,
        "beq"
            | "bne"
            | "blt"
            | "bge"
            | "bltu"
            | "bgeu"
            | "jal"
            | "jalr"
            | "c.j"
            | "c.jal"
            | "c.jr"
            | "c.jalr"
            | "c.beqz"
            | "c.bnez"
            | "ecall"
            | "ebreak"
            | "c.ebreak"
    )
}

fn rv_expected_entry(insns: &[(u64, &Insn)]) -> Option<(u64, RvEmulation)> {
    for (addr, insn) in insns {
        let ops = insn.operands.as_str();
        let emulation = match insn.mnemonic.as_str() {
            "sd" | "c.sdsp" if ops.starts_with("ra, ") && ops.ends_with("(sp)") => {
                let off = ops["ra, ".len()..ops.len() - "(sp)".len()]
                    .parse::<i32>()
                    .unwrap();
                Some(RvEmulation::StoreToStack {
                    rs2: 1,
                    offset: off,
                })
            }
            "addi" if ops.starts_with("sp, sp, -") => Some(RvEmulation::AdjustSp {
                imm: parse_imm(&ops[8..]) as i32,
            }),
            "c.addi16sp" | "c.addi" if ops.starts_with("sp, -") => Some(RvEmulation::AdjustSp {
                imm: parse_imm(&ops[4..]) as i32,
            }),
            m if rv_is_control(m) => return None,
            _ => None,
        };
        if let Some(e) = emulation {
            return Some((*addr, e));
        }
    }
    None
}

fn check_rv(f: &Function, insns: &[(u64, &Insn)], tally: &mut Tally) {
    let mut walked = Vec::new();
    riscv64::walk_instructions(&f.bytes, &mut |offset, _, _| {
        walked.push(f.addr + offset as u64);
        true
    });
    let expected: Vec<u64> = insns.iter().map(|(a, _)| *a).collect();
    assert_eq!(walked, expected, "{}: instruction boundaries", f.name);

    let width_at = |addr: u64| -> u8 {
        let insn = &insns.iter().find(|(a, _)| *a == addr).unwrap().1;
        if insn.mnemonic.starts_with("c.") {
            2
        } else {
            4
        }
    };
    let entry = Riscv64::find_entry(&f.bytes, f.addr);
    assert_eq!(
        entry.map(|s| (s.addr, s.emulation)),
        rv_expected_entry(insns),
        "{}: entry site",
        f.name
    );
    if let Some(site) = entry {
        let width = width_at(site.addr);
        assert_eq!(site.len, width, "{}: entry width", f.name);
        assert_eq!(
            site.patch,
            if width == 2 {
                riscv64::C_EBREAK
            } else {
                riscv64::EBREAK
            }
        );
        tally.with_entry += 1;
    }
    let mut want = Vec::new();
    for (i, (addr, insn)) in insns.iter().enumerate() {
        // `auipc rX, hi` right before: (rX, pc + (hi << 12)).
        let auipc = i
            .checked_sub(1)
            .map(|p| insns[p])
            .filter(|(_, p)| p.mnemonic == "auipc")
            .map(|(pa, p)| {
                let (reg, imm) = p.operands.split_once(", ").unwrap();
                let hi = (parse_imm(imm) as i32).wrapping_shl(12) as i64;
                (rv_reg(reg), pa.wrapping_add(hi as u64))
            });
        let emulation = match (insn.mnemonic.as_str(), insn.operands.as_str()) {
            ("c.jr", "ra") | ("jalr", "zero, 0(ra)") => {
                Some(RvEmulation::JumpRegister { rs1: 1, offset: 0 })
            }
            // `tail sym`: auipc + jalr zero through the same register.
            ("jalr", ops) if ops.starts_with("zero, ") && auipc.is_some() => {
                let (lo, reg) = ops["zero, ".len()..]
                    .trim_end_matches(')')
                    .split_once('(')
                    .unwrap();
                let (rs1, offset) = (rv_reg(reg), parse_imm(lo) as i32);
                let (auipc_reg, base) = auipc.unwrap();
                let target = base.wrapping_add(offset as i64 as u64) & !1;
                (auipc_reg == rs1 && outside(f, target))
                    .then_some(RvEmulation::JumpRegister { rs1, offset })
            }
            ("jal", ops) if ops.starts_with("zero, ") => branch_target(ops)
                .filter(|t| outside(f, *t))
                .map(|target| RvEmulation::Jump { target }),
            ("c.j", ops) => branch_target(ops)
                .filter(|t| outside(f, *t))
                .map(|target| RvEmulation::Jump { target }),
            _ => None,
        };
        if let Some(e) = emulation {
            want.push((*addr, e, width_at(*addr)));
        }
    }
    let got: Vec<_> = collect_returns::<Riscv64>(f)
        .iter()
        .map(|s| (s.addr, s.emulation, s.len))
        .collect();
    assert_eq!(got, want, "{}: return sites", f.name);
    assert!(
        !got.is_empty(),
        "{}: every corpus function returns somewhere",
        f.name
    );
    tally.returns += got.len();
    tally.tail_calls += got
        .iter()
        .filter(|(_, e, _)| {
            matches!(
                e,
                RvEmulation::Jump { .. } | RvEmulation::JumpRegister { rs1: 2.., .. }
            )
        })
        .count();
}

fn run_arch(arch: &str, check: fn(&Function, &[(u64, &Insn)], &mut Tally)) -> Tally {
    let tools = tools();
    let mut total = Tally::default();
    for (name, flags) in variants(arch) {
        let so = build(&tools, arch, &name, &flags);
        let dis = disassemble(&tools, arch, &so);
        let mut tally = Tally::default();
        for f in functions(&so) {
            let insns = instructions_of(&dis, &f);
            assert!(
                !insns.is_empty(),
                "{}: objdump shows no instructions",
                f.name
            );
            check(&f, &insns, &mut tally);
            tally.functions += 1;
        }
        eprintln!(
            "{arch} {name}: {} functions, {} entry sites, {} return sites ({} tail calls)",
            tally.functions, tally.with_entry, tally.returns, tally.tail_calls
        );
        // With frame pointers every corpus function has a prologue fbt can use.
        if name.starts_with("O0-fno-omit") {
            assert_eq!(
                tally.with_entry, tally.functions,
                "{arch} {name}: every -O0 frame-pointer function has an entry site"
            );
        }
        total.functions += tally.functions;
        total.with_entry += tally.with_entry;
        total.returns += tally.returns;
        total.tail_calls += tally.tail_calls;
    }
    assert!(
        total.tail_calls > 0,
        "{arch}: the corpus has tail calls; none were found"
    );
    total
}

#[test]
fn x86_64_decoder_matches_objdump() {
    let t = run_arch("x86_64", check_x86);
    assert!(
        t.with_entry * 10 >= t.functions * 8,
        "x86_64: too few entry sites: {}/{}",
        t.with_entry,
        t.functions
    );
}

#[test]
fn aarch64_decoder_matches_objdump() {
    let t = run_arch("aarch64", check_a64);
    assert!(
        t.with_entry * 2 >= t.functions,
        "aarch64: too few entry sites: {}/{}",
        t.with_entry,
        t.functions
    );
}

#[test]
fn riscv64_decoder_matches_objdump() {
    let t = run_arch("riscv64", check_rv);
    assert!(
        t.with_entry * 2 >= t.functions,
        "riscv64: too few entry sites: {}/{}",
        t.with_entry,
        t.functions
    );
}
