//! DIF disassembly for `dtrace -S`, in libdtrace's layout: a `DIFO` header with the return
//! type, then `OFF OPCODE INSTRUCTION` lines (with `!` comments giving integer and string table
//! values), then the variable table. Userland only.

use rdtrace_ffi::dif::{BuiltinVar, Instruction, Opcode, Subr, DIF_TYPE_CTF, DIF_TYPE_STRING};

use super::codegen::Difo;

fn reg(r: u8) -> String {
    format!("%r{}", r)
}

fn var_name(d: &Difo, id: u16) -> String {
    if let Some(b) = BuiltinVar::from_id(id) {
        return b.name().to_string();
    }
    for v in &d.vars {
        if v.id == u32::from(id) {
            return d.string_at(v.name);
        }
    }
    format!("{:#x}", id)
}

fn operands(d: &Difo, i: &Instruction) -> (String, String) {
    match *i {
        Instruction::Reg3 { r1, r2, rd, .. } => (
            format!("{}, {}, {}", reg(r1), reg(r2), reg(rd)),
            String::new(),
        ),
        Instruction::Reg2 { r1, rd, .. } => (format!("{}, {}", reg(r1), reg(rd)), String::new()),
        Instruction::Compare { r1, r2, .. } => (format!("{}, {}", reg(r1), reg(r2)), String::new()),
        Instruction::Test { r1 } => (reg(r1), String::new()),
        Instruction::Branch { label, .. } => (format!("{}", label), String::new()),
        Instruction::Load { addr, rd, .. } => {
            (format!("[{}], {}", reg(addr), reg(rd)), String::new())
        }
        Instruction::Store { rs, addr, .. } => {
            (format!("{}, [{}]", reg(rs), reg(addr)), String::new())
        }
        Instruction::Ret { rd } => (reg(rd), String::new()),
        Instruction::Plain { .. } => (String::new(), String::new()),
        Instruction::Setx { index, rd } => {
            let v = d.ints.get(usize::from(index)).copied().unwrap_or(0);
            (
                format!("DT_INTEGER[{}], {}", index, reg(rd)),
                format!("\t\t! 0x{:x}", v),
            )
        }
        Instruction::Sets { offset, rd } => (
            format!("DT_STRING[{}], {}", offset, reg(rd)),
            format!("\t\t! \"{}\"", d.string_at(u32::from(offset))),
        ),
        Instruction::LoadArray { var, index, rd, .. } => (
            format!("DT_VAR({}), {}, {}", var, reg(index), reg(rd)),
            format!(
                "\t\t! DT_VAR({}) = \"{}\"",
                var,
                var_name(d, u16::from(var))
            ),
        ),
        Instruction::LoadVar { var, rd, .. } => (
            format!("DT_VAR({}), {}", var, reg(rd)),
            format!("\t\t! DT_VAR({}) = \"{}\"", var, var_name(d, var)),
        ),
        Instruction::StoreVar { var, rs, .. } => (
            format!("{}, DT_VAR({})", reg(rs), var),
            format!("\t\t! DT_VAR({}) = \"{}\"", var, var_name(d, var)),
        ),
        Instruction::Call { subr, rd } => {
            let n = Subr::from_id(subr).map(|s| s.name()).unwrap_or("?");
            (
                format!("DIF_SUBR({}), {}", subr, reg(rd)),
                format!("\t\t! {}", n),
            )
        }
        Instruction::PushTuple { ty, size, rs, .. } => {
            let t = if ty == DIF_TYPE_STRING {
                "DT_TYPE(1)"
            } else {
                "DT_TYPE(0)"
            };
            (format!("{}, {}, {}", t, reg(size), reg(rs)), String::new())
        }
        Instruction::Allocs { size, rd } => (format!("{}, {}", reg(size), reg(rd)), String::new()),
        Instruction::Copys { src, size, dst } => (
            format!("{}, {}, {}", reg(src), reg(size), reg(dst)),
            String::new(),
        ),
        Instruction::Xlate { xlref, rd, .. } => {
            (format!("DT_XLREF[{}], {}", xlref, reg(rd)), String::new())
        }
    }
}

/// A DIF type as libdtrace's disassembler names it: kind, CTF kind, by-reference flags, size.
fn type_str(t: &rdtrace_ffi::dif::DifType) -> String {
    let kind = match t.kind {
        DIF_TYPE_CTF => "D type".to_string(),
        DIF_TYPE_STRING => "string".to_string(),
        k => format!("0x{:x}", k),
    };
    let ckind = match t.ckind {
        0 => "unknown".to_string(),
        1 => "integer".to_string(),
        2 => "float".to_string(),
        3 => "pointer".to_string(),
        4 => "array".to_string(),
        5 => "function".to_string(),
        6 => "struct".to_string(),
        7 => "union".to_string(),
        8 => "enum".to_string(),
        9 => "forward".to_string(),
        10 => "typedef".to_string(),
        11 => "volatile".to_string(),
        12 => "const".to_string(),
        13 => "restrict".to_string(),
        k => format!("0x{:x}", k),
    };
    // DIF_TF_BYREF = 1, DIF_TF_BYUREF = 2.
    if t.flags & 3 != 0 {
        let user = if t.flags & 2 != 0 { "user " } else { "" };
        format!("{} ({}) by {}ref (size {})", kind, ckind, user, t.size)
    } else {
        format!("{} ({}) (size {})", kind, ckind, t.size)
    }
}

/// Disassembles one DIFO. libdtrace heads each object with the address of its DIFO in memory;
/// ours is the address of `d`.
pub fn disassemble(d: &Difo) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "\nDIFO {:#x} returns {}\n",
        d as *const Difo as usize,
        type_str(&d.rtype)
    ));
    s.push_str("OFF OPCODE      INSTRUCTION\n");
    for (pc, w) in d.text.iter().enumerate() {
        match Instruction::decode(*w) {
            Ok(i) => {
                let op: Opcode = i.opcode();
                let (ops, comment) = operands(d, &i);
                s.push_str(&format!(
                    "{:02}: {:08x}    {:<7} {}{}\n",
                    pc,
                    w,
                    op.mnemonic(),
                    ops,
                    comment
                ));
            }
            Err(_) => s.push_str(&format!("{:02}: {:08x}    (illegal opcode)\n", pc, w)),
        }
    }
    if !d.vars.is_empty() {
        s.push_str("\nNAME             ID   KND SCP FLAG TYPE\n");
        for v in &d.vars {
            let knd = if v.kind == 0 { "arr" } else { "scl" };
            let scp = match v.scope {
                0 => "glb",
                1 => "tls",
                _ => "loc",
            };
            // DIFV_F_REF = 1, DIFV_F_MOD = 2: "r", "w" or "r/w".
            let flags = match v.flags & 3 {
                1 => "r",
                2 => "w",
                3 => "r/w",
                _ => "",
            };
            let ty = type_str(&v.ty);
            s.push_str(&format!(
                "{:<16} {:<4x} {} {} {:<4} {}\n",
                d.string_at(v.name),
                v.id,
                knd,
                scp,
                flags,
                ty
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdtrace_ffi::dif::DifType;

    #[test]
    fn layout_of_setx_ret() {
        let d = Difo {
            text: vec![
                Instruction::Setx { index: 0, rd: 1 }.encode().unwrap(),
                Instruction::Ret { rd: 1 }.encode().unwrap(),
            ],
            ints: vec![42],
            strtab: vec![],
            vars: vec![],
            rtype: DifType::ctf(1, 4),
        };
        let text = disassemble(&d);
        let header = format!(
            "\nDIFO {:#x} returns D type (integer) (size 4)\n",
            &d as *const Difo as usize
        );
        assert!(text.starts_with(&header), "{}", text);
        assert!(text.contains("OFF OPCODE      INSTRUCTION"));
        assert!(
            text.contains("00: 25000001    setx    DT_INTEGER[0], %r1\t\t! 0x2a"),
            "{}",
            text
        );
        assert!(text.contains("01: 23000001    ret     %r1"));
    }
}
