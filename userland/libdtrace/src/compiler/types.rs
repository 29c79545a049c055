//! The type repository: D's C type system (LP64), with D's built-in types and typedefs.
//!
//! Types live in an arena addressed by [`TypeId`]; typedefs stay distinct nodes so names print as
//! written (`uint32_t`, `pid_t`) while [`TypeRepo::resolve`] strips them for semantics. Struct,
//! union and enum tags, and typedef names, are looked up by name; a CTF loader (kernel types) can
//! later add types through the same `add_*` calls, under a module scope (`` mod`name ``).
//! Userland only.

use std::collections::HashMap;

/// Index of a type in the repository.
pub type TypeId = u32;

/// A struct/union member.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub ty: TypeId,
    /// Byte offset of the member (of its storage unit for bit-fields).
    pub offset: u64,
    /// Bit-field width, if the member is a bit-field.
    pub bits: Option<u32>,
    /// Bit offset inside the storage unit for bit-fields.
    pub bit_offset: u32,
}

#[derive(Debug, Clone)]
pub enum TypeKind {
    Void,
    /// An integer type; `name` is its C spelling.
    Int {
        size: u32,
        signed: bool,
        name: &'static str,
    },
    Float {
        size: u32,
        name: &'static str,
    },
    Pointer(TypeId),
    Array {
        elem: TypeId,
        count: u64,
    },
    Function {
        ret: TypeId,
        params: Vec<TypeId>,
        varargs: bool,
    },
    /// Struct or union; `members == None` while only forward-declared.
    Sou {
        is_union: bool,
        tag: Option<String>,
        members: Option<Vec<Member>>,
        size: u64,
        align: u64,
    },
    /// Enum; `values == None` while only forward-declared.
    Enum {
        tag: Option<String>,
        values: Option<Vec<(String, i64)>>,
    },
    Typedef {
        name: String,
        target: TypeId,
    },
    /// D's string type.
    String,
}

#[derive(Debug, Clone)]
pub struct Type {
    pub kind: TypeKind,
    pub is_const: bool,
}

/// Well-known type ids created by [`TypeRepo::new`].
#[derive(Debug, Clone, Copy)]
pub struct Builtins {
    pub void: TypeId,
    pub char: TypeId,
    pub uchar: TypeId,
    pub short: TypeId,
    pub ushort: TypeId,
    pub int: TypeId,
    pub uint: TypeId,
    pub long: TypeId,
    pub ulong: TypeId,
    pub longlong: TypeId,
    pub ulonglong: TypeId,
    pub string: TypeId,
    pub void_ptr: TypeId,
    pub char_ptr: TypeId,
    pub uint64: TypeId,
    pub int64: TypeId,
    pub uintptr: TypeId,
    pub size_t: TypeId,
    pub pid_t: TypeId,
    pub uint32: TypeId,
    pub int32: TypeId,
}

/// The repository.
#[derive(Debug, Clone)]
pub struct TypeRepo {
    types: Vec<Type>,
    typedefs: HashMap<String, TypeId>,
    structs: HashMap<String, TypeId>,
    unions: HashMap<String, TypeId>,
    enums: HashMap<String, TypeId>,
    pointers: HashMap<TypeId, TypeId>,
    pub b: Builtins,
}

impl Default for TypeRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TypeRepo {
    /// A repository holding D's built-in types.
    pub fn new() -> Self {
        let mut r = TypeRepo {
            types: Vec::new(),
            typedefs: HashMap::new(),
            structs: HashMap::new(),
            unions: HashMap::new(),
            enums: HashMap::new(),
            pointers: HashMap::new(),
            b: Builtins {
                void: 0,
                char: 0,
                uchar: 0,
                short: 0,
                ushort: 0,
                int: 0,
                uint: 0,
                long: 0,
                ulong: 0,
                longlong: 0,
                ulonglong: 0,
                string: 0,
                void_ptr: 0,
                char_ptr: 0,
                uint64: 0,
                int64: 0,
                uintptr: 0,
                size_t: 0,
                pid_t: 0,
                uint32: 0,
                int32: 0,
            },
        };
        let void = r.add(TypeKind::Void);
        let int = |size, signed, name| TypeKind::Int { size, signed, name };
        let char = r.add(int(1, true, "char"));
        let schar = r.add(int(1, true, "signed char"));
        let uchar = r.add(int(1, false, "unsigned char"));
        let short = r.add(int(2, true, "short"));
        let ushort = r.add(int(2, false, "unsigned short"));
        let int_t = r.add(int(4, true, "int"));
        let uint = r.add(int(4, false, "unsigned int"));
        let long = r.add(int(8, true, "long"));
        let ulong = r.add(int(8, false, "unsigned long"));
        let longlong = r.add(int(8, true, "long long"));
        let ulonglong = r.add(int(8, false, "unsigned long long"));
        let _float = r.add(TypeKind::Float {
            size: 4,
            name: "float",
        });
        let _double = r.add(TypeKind::Float {
            size: 8,
            name: "double",
        });
        let _ldouble = r.add(TypeKind::Float {
            size: 16,
            name: "long double",
        });
        let string = r.add(TypeKind::String);
        let void_ptr = r.pointer_to(void);
        let char_ptr = r.pointer_to(char);
        let _ = schar;
        let td = |r: &mut TypeRepo, name: &str, target| r.add_typedef(name, target);
        let _int8 = td(&mut r, "int8_t", schar);
        let _int16 = td(&mut r, "int16_t", short);
        let int32 = td(&mut r, "int32_t", int_t);
        let int64 = td(&mut r, "int64_t", long);
        let _uint8 = td(&mut r, "uint8_t", uchar);
        let _uint16 = td(&mut r, "uint16_t", ushort);
        let uint32 = td(&mut r, "uint32_t", uint);
        let uint64 = td(&mut r, "uint64_t", ulong);
        let _intptr = td(&mut r, "intptr_t", long);
        let uintptr = td(&mut r, "uintptr_t", ulong);
        let size_t = td(&mut r, "size_t", ulong);
        let _ssize = td(&mut r, "ssize_t", long);
        let _ptrdiff = td(&mut r, "ptrdiff_t", long);
        let _off = td(&mut r, "off_t", long);
        let pid_t = td(&mut r, "pid_t", int_t);
        let _id = td(&mut r, "id_t", long);
        let _uid = td(&mut r, "uid_t", uint);
        let _gid = td(&mut r, "gid_t", uint);
        let _proc = td(&mut r, "processorid_t", int_t);
        let _zone = td(&mut r, "zoneid_t", int_t);
        let _dev = td(&mut r, "dev_t", ulong);
        let _time = td(&mut r, "time_t", long);
        let _hrt = td(&mut r, "hrtime_t", long);
        let _caddr = td(&mut r, "caddr_t", char_ptr);
        for (n, t) in [
            ("uchar_t", uchar),
            ("ushort_t", ushort),
            ("uint_t", uint),
            ("ulong_t", ulong),
            ("u_char", uchar),
            ("u_short", ushort),
            ("u_int", uint),
            ("u_long", ulong),
            ("longlong_t", longlong),
            ("u_longlong_t", ulonglong),
            ("u_int8_t", uchar),
            ("u_int16_t", ushort),
            ("u_int32_t", uint),
            ("u_int64_t", ulong),
            ("boolean_t", int_t),
            ("lwpid_t", int_t),
            ("ipaddr_t", uint),
            ("mode_t", ushort),
            ("major_t", uint),
            ("minor_t", uint),
        ] {
            td(&mut r, n, t);
        }
        r.b = Builtins {
            void,
            char,
            uchar,
            short,
            ushort,
            int: int_t,
            uint,
            long,
            ulong,
            longlong,
            ulonglong,
            string,
            void_ptr,
            char_ptr,
            uint64,
            int64,
            uintptr,
            size_t,
            pid_t,
            uint32,
            int32,
        };
        r
    }

    /// Adds a type node.
    pub fn add(&mut self, kind: TypeKind) -> TypeId {
        self.types.push(Type {
            kind,
            is_const: false,
        });
        (self.types.len() - 1) as TypeId
    }

    /// Adds a typedef and registers its name.
    pub fn add_typedef(&mut self, name: &str, target: TypeId) -> TypeId {
        let id = self.add(TypeKind::Typedef {
            name: name.to_string(),
            target,
        });
        self.typedefs.insert(name.to_string(), id);
        id
    }

    pub fn get(&self, id: TypeId) -> &Type {
        &self.types[id as usize]
    }

    pub fn kind(&self, id: TypeId) -> &TypeKind {
        &self.types[id as usize].kind
    }

    pub fn kind_mut(&mut self, id: TypeId) -> &mut TypeKind {
        &mut self.types[id as usize].kind
    }

    /// A typedef by name.
    pub fn typedef(&self, name: &str) -> Option<TypeId> {
        self.typedefs.get(name).copied()
    }

    /// Every typedef name (seeds the parser's cast detection).
    pub fn typedef_names(&self) -> impl Iterator<Item = &String> {
        self.typedefs.keys()
    }

    /// Tag lookup.
    pub fn tagged(&self, kind: &str, tag: &str) -> Option<TypeId> {
        match kind {
            "struct" => self.structs.get(tag).copied(),
            "union" => self.unions.get(tag).copied(),
            _ => self.enums.get(tag).copied(),
        }
    }

    /// Registers a tag.
    pub fn set_tag(&mut self, kind: &str, tag: &str, id: TypeId) {
        match kind {
            "struct" => self.structs.insert(tag.to_string(), id),
            "union" => self.unions.insert(tag.to_string(), id),
            _ => self.enums.insert(tag.to_string(), id),
        };
    }

    /// The pointer type to `t` (shared).
    pub fn pointer_to(&mut self, t: TypeId) -> TypeId {
        if let Some(p) = self.pointers.get(&t) {
            return *p;
        }
        let p = self.add(TypeKind::Pointer(t));
        self.pointers.insert(t, p);
        p
    }

    /// A const-qualified copy of `t`.
    pub fn const_of(&mut self, t: TypeId) -> TypeId {
        if self.get(t).is_const {
            return t;
        }
        let k = self.kind(t).clone();
        self.types.push(Type {
            kind: k,
            is_const: true,
        });
        (self.types.len() - 1) as TypeId
    }

    /// Strips typedefs.
    pub fn resolve(&self, mut t: TypeId) -> TypeId {
        while let TypeKind::Typedef { target, .. } = self.kind(t) {
            t = *target;
        }
        t
    }

    pub fn rkind(&self, t: TypeId) -> &TypeKind {
        self.kind(self.resolve(t))
    }

    pub fn is_integer(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Int { .. } | TypeKind::Enum { .. })
    }
    pub fn is_float(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Float { .. })
    }
    pub fn is_arith(&self, t: TypeId) -> bool {
        self.is_integer(t) || self.is_float(t)
    }
    pub fn is_pointer(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Pointer(_))
    }
    pub fn is_array(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Array { .. })
    }
    pub fn is_string(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::String)
    }
    pub fn is_void(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Void)
    }
    pub fn is_sou(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Sou { .. })
    }
    pub fn is_function(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Function { .. })
    }
    /// Scalar as libdtrace defines it: an integer, enum or pointer. Floating-point types are
    /// neither scalar nor arithmetic in D (DIF has no floating-point operations).
    pub fn is_scalar(&self, t: TypeId) -> bool {
        self.is_integer(t) || self.is_pointer(t)
    }
    pub fn is_signed(&self, t: TypeId) -> bool {
        match self.rkind(t) {
            TypeKind::Int { signed, .. } => *signed,
            TypeKind::Enum { .. } => true,
            _ => false,
        }
    }
    /// Whether `t` is a char-like integer (for `char []` / `char *` string rules).
    pub fn is_char(&self, t: TypeId) -> bool {
        matches!(self.rkind(t), TypeKind::Int { size: 1, .. })
    }

    /// Incomplete: void, forward struct/union/enum, or array of incomplete.
    pub fn is_incomplete(&self, t: TypeId) -> bool {
        match self.rkind(t) {
            TypeKind::Sou { members: None, .. } | TypeKind::Enum { values: None, .. } => true,
            TypeKind::Array { elem, .. } => self.is_incomplete(*elem),
            _ => false,
        }
    }

    /// The pointee of a pointer or element of an array.
    pub fn referenced(&self, t: TypeId) -> Option<TypeId> {
        match self.rkind(t) {
            TypeKind::Pointer(p) => Some(*p),
            TypeKind::Array { elem, .. } => Some(*elem),
            _ => None,
        }
    }

    /// Size in bytes (strings: 0 here, the strsize applies; functions and void: 0).
    pub fn size_of(&self, t: TypeId) -> u64 {
        match self.rkind(t) {
            TypeKind::Void | TypeKind::Function { .. } | TypeKind::String => 0,
            TypeKind::Int { size, .. } | TypeKind::Float { size, .. } => u64::from(*size),
            TypeKind::Pointer(_) => 8,
            TypeKind::Array { elem, count } => self.size_of(*elem).saturating_mul(*count),
            TypeKind::Sou { size, .. } => *size,
            TypeKind::Enum { .. } => 4,
            TypeKind::Typedef { .. } => 0,
        }
    }

    /// Alignment in bytes.
    pub fn align_of(&self, t: TypeId) -> u64 {
        match self.rkind(t) {
            TypeKind::Int { size, .. } | TypeKind::Float { size, .. } => {
                u64::from(*size).clamp(1, 16)
            }
            TypeKind::Pointer(_) => 8,
            TypeKind::Array { elem, .. } => self.align_of(*elem),
            TypeKind::Sou { align, .. } => (*align).max(1),
            TypeKind::Enum { .. } => 4,
            _ => 1,
        }
    }

    /// Looks a member up in a struct/union (searching anonymous members too).
    pub fn member(&self, sou: TypeId, name: &str) -> Option<Member> {
        let TypeKind::Sou {
            members: Some(ms), ..
        } = self.rkind(sou)
        else {
            return None;
        };
        for m in ms {
            if m.name == name {
                return Some(m.clone());
            }
            if m.name.is_empty() && self.is_sou(m.ty) {
                if let Some(mut inner) = self.member(m.ty, name) {
                    inner.offset += m.offset;
                    return Some(inner);
                }
            }
        }
        None
    }

    /// The C spelling of a type, as libdtrace prints it in messages (`char *`, `int [3]`).
    pub fn name(&self, t: TypeId) -> String {
        let ty = self.get(t);
        let base = match &ty.kind {
            TypeKind::Void => "void".to_string(),
            TypeKind::Int { name, .. } | TypeKind::Float { name, .. } => name.to_string(),
            TypeKind::String => "string".to_string(),
            TypeKind::Typedef { name, .. } => name.clone(),
            TypeKind::Pointer(p) => {
                let inner = self.name(*p);
                if matches!(self.kind(*p), TypeKind::Function { .. }) {
                    return inner.replacen('(', "(*)(", 1);
                }
                if inner.ends_with('*') {
                    format!("{}*", inner)
                } else {
                    format!("{} *", inner)
                }
            }
            TypeKind::Array { elem, count } => format!("{} [{}]", self.name(*elem), count),
            TypeKind::Function {
                ret,
                params,
                varargs,
            } => {
                let mut ps: Vec<String> = params.iter().map(|p| self.name(*p)).collect();
                if *varargs {
                    ps.push("...".into());
                }
                format!("{} ({})", self.name(*ret), ps.join(", "))
            }
            TypeKind::Sou { is_union, tag, .. } => {
                let kw = if *is_union { "union" } else { "struct" };
                match tag {
                    Some(t) => format!("{} {}", kw, t),
                    None => format!("{} ", kw),
                }
            }
            TypeKind::Enum { tag, .. } => match tag {
                Some(t) => format!("enum {}", t),
                None => "enum ".to_string(),
            },
        };
        if ty.is_const {
            format!("const {}", base)
        } else {
            base
        }
    }

    /// Integer type of the given size and signedness (for promotions and constants).
    pub fn int_of(&self, size: u64, signed: bool) -> TypeId {
        let b = &self.b;
        match (size, signed) {
            (1, true) => b.char,
            (1, false) => b.uchar,
            (2, true) => b.short,
            (2, false) => b.ushort,
            (4, true) => b.int,
            (4, false) => b.uint,
            (_, true) => b.long,
            (_, false) => b.ulong,
        }
    }

    /// Lays out a struct/union from (name, type, bit-width) triples, as libdtrace's CTF
    /// container does for D declarations (not as a C compiler would): each member starts at the
    /// first byte after the previous member's last bit, rounded up to the member's alignment; a
    /// bit-field is an integer of its own, `clp2(ceil(width / 8))` bytes wide and aligned, with
    /// its bits from bit 0 of its first byte; there is no padding after the last member.
    /// Returns (members, size, align).
    pub fn layout(
        &self,
        is_union: bool,
        fields: &[(String, TypeId, Option<u32>)],
    ) -> (Vec<Member>, u64, u64) {
        let mut members = Vec::new();
        let mut max_align = 1u64;
        let mut size = 0u64;
        // (offset in bits, width in bits) of the previous member.
        let mut last: Option<(u64, u64)> = None;
        for (name, ty, bits) in fields {
            let (msize, malign, mbits) = match bits {
                Some(w) => {
                    let bytes = bitfield_bytes(*w);
                    (bytes, bytes.max(1), u64::from(*w))
                }
                None => {
                    let s = self.size_of(*ty);
                    (s, self.align_of(*ty), s * 8)
                }
            };
            max_align = max_align.max(malign);
            let offset = match last {
                Some((lo, lb)) if !is_union => (lo + lb).div_ceil(8).div_ceil(malign) * malign,
                _ => 0,
            };
            size = if is_union || last.is_none() {
                size.max(msize)
            } else {
                offset + msize
            };
            members.push(Member {
                name: name.clone(),
                ty: *ty,
                offset,
                bits: *bits,
                bit_offset: 0,
            });
            last = Some((offset * 8, mbits));
        }
        (members, size, max_align)
    }
}

/// Bytes of the integer type libdtrace creates for a bit-field of `width` bits: the smallest
/// power of two holding them.
pub fn bitfield_bytes(width: u32) -> u64 {
    let bytes = u64::from(width).div_ceil(8);
    if bytes == 0 {
        0
    } else {
        bytes.next_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_and_sizes() {
        let mut r = TypeRepo::new();
        let b = r.b;
        assert_eq!(r.name(b.char_ptr), "char *");
        assert_eq!(r.name(b.uint32), "uint32_t");
        assert_eq!(r.size_of(b.uint64), 8);
        let arr = r.add(TypeKind::Array {
            elem: b.int,
            count: 3,
        });
        assert_eq!(r.name(arr), "int [3]");
        assert_eq!(r.size_of(arr), 12);
        let pp = r.pointer_to(b.void_ptr);
        assert_eq!(r.name(pp), "void **");
    }

    #[test]
    fn struct_layout_follows_libdtrace_ctf_rules() {
        let r = TypeRepo::new();
        let b = r.b;
        // Members aligned, no padding after the last one.
        let (m, size, align) = r.layout(
            false,
            &[
                ("c".into(), b.char, None),
                ("l".into(), b.long, None),
                ("i".into(), b.int, None),
            ],
        );
        assert_eq!((m[0].offset, m[1].offset, m[2].offset), (0, 8, 16));
        assert_eq!((size, align), (20, 8));
        // Bit-fields: each is its own clp2-sized integer starting at the next byte.
        let bf = |ws: &[(TypeId, u32)]| {
            let fields: Vec<(String, TypeId, Option<u32>)> = ws
                .iter()
                .enumerate()
                .map(|(i, (t, w))| (format!("f{i}"), *t, Some(*w)))
                .collect();
            r.layout(false, &fields)
        };
        assert_eq!(bf(&[(b.int, 1)]).1, 1);
        assert_eq!(bf(&[(b.int, 1), (b.int, 3)]).1, 2);
        assert_eq!(bf(&[(b.int, 12), (b.int, 10), (b.int, 3)]).1, 5);
        assert_eq!(bf(&[(b.int, 20), (b.int, 3), (b.int, 12)]).1, 6);
        assert_eq!(bf(&[(b.char, 2), (b.short, 12), (b.long, 32)]).1, 8);
        let (m, size, _) = bf(&[(b.int, 30), (b.int, 30), (b.int, 32)]);
        assert_eq!(
            (m[1].offset, m[2].offset, m[2].bit_offset, size),
            (4, 8, 0, 12)
        );
        let (_, usize_, _) = r.layout(
            true,
            &[("a".into(), b.char, None), ("b".into(), b.long, None)],
        );
        assert_eq!(usize_, 8);
    }
}
