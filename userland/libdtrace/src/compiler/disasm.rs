//! DIF disassembly for `dtrace -S`, in libdtrace's layout: a `DIFO` header with the return
//! type, then `OFF OPCODE INSTRUCTION` lines (with `!` comments giving integer and string table
//! values), then the variable table. Userland only.

use rdtrace_ffi::dif::{BuiltinVar, Instruction, Opcode, Subr, DIF_TYPE_STRING};

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

fn type_desc(d: &Difo) -> String {
    let t = d.rtype;
    if t.kind == DIF_TYPE_STRING {
        return "string".into();
    }
    if t.size == 0 {
        return "void".into();
    }
    let by = if t.flags & 1 != 0 { " by ref" } else { "" };
    format!("D type (integer) (size {}){}", t.size, by)
}

/// Disassembles one DIFO.
pub fn disassemble(d: &Difo, title: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("\nDIFO {} returns {}\n", title, type_desc(d)));
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
            let mut flags = String::new();
            if v.flags & 1 != 0 {
                flags.push('r');
            }
            if v.flags & 2 != 0 {
                flags.push('w');
            }
            let ty = if v.ty.kind == DIF_TYPE_STRING {
                "string".to_string()
            } else {
                format!("D type (size {})", v.ty.size)
            };
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
        let text = disassemble(&d, "0x1");
        assert!(text.contains("OFF OPCODE      INSTRUCTION"));
        assert!(
            text.contains("00: 25000001    setx    DT_INTEGER[0], %r1\t\t! 0x2a"),
            "{}",
            text
        );
        assert!(text.contains("01: 23000001    ret     %r1"));
    }
}
