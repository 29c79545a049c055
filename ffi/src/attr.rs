//! Stability attributes and provider privileges: `dtrace_attribute_t`,
//! `dtrace_pattr_t`, `dtrace_ppriv_t`, the stability and dependency-class
//! codes, the DOF packing of an attribute, and the `DTRACE_PRIV_*` bits.
//!
//! Probe context: yes (plain data, no allocation, no panics).

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::pod::abi_struct;
use crate::UnknownValue;

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $variant:ident = $num:literal, $cname:literal, $text:literal; )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), ").")]
                $variant = $num,
            )+
        }

        impl $name {
            /// Every member, in numeric (and therefore ordering) order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name libdtrace prints (e.g. in `dtrace -v` listings).
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The C macro name.
            pub const fn c_name(self) -> &'static str {
                match self { $($name::$variant => $cname,)+ }
            }

            /// Looks a member up by its printed name, ignoring ASCII case
            /// as libdtrace does when parsing attribute strings.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|m| m.name().eq_ignore_ascii_case(name))
            }
        }

        impl TryFrom<u8> for $name {
            type Error = UnknownValue;
            fn try_from(raw: u8) -> Result<Self, UnknownValue> {
                match raw {
                    $($num => Ok($name::$variant),)+
                    other => Err(UnknownValue(other as u64)),
                }
            }
        }
    };
}

code_enum! {
    /// Interface stability level (`DTRACE_STABILITY_*`), least to most stable.
    Stability {
        Internal = 0, "DTRACE_STABILITY_INTERNAL", "Internal";
        Private = 1, "DTRACE_STABILITY_PRIVATE", "Private";
        Obsolete = 2, "DTRACE_STABILITY_OBSOLETE", "Obsolete";
        External = 3, "DTRACE_STABILITY_EXTERNAL", "External";
        Unstable = 4, "DTRACE_STABILITY_UNSTABLE", "Unstable";
        Evolving = 5, "DTRACE_STABILITY_EVOLVING", "Evolving";
        Stable = 6, "DTRACE_STABILITY_STABLE", "Stable";
        Standard = 7, "DTRACE_STABILITY_STANDARD", "Standard";
    }
}

/// Highest stability code (`DTRACE_STABILITY_MAX`).
pub const DTRACE_STABILITY_MAX: u8 = 7;

code_enum! {
    /// Dependency class (`DTRACE_CLASS_*`): how widely an interface is
    /// guaranteed to exist.
    DepClass {
        Unknown = 0, "DTRACE_CLASS_UNKNOWN", "Unknown";
        Cpu = 1, "DTRACE_CLASS_CPU", "CPU";
        Platform = 2, "DTRACE_CLASS_PLATFORM", "Platform";
        Group = 3, "DTRACE_CLASS_GROUP", "Group";
        Isa = 4, "DTRACE_CLASS_ISA", "ISA";
        Common = 5, "DTRACE_CLASS_COMMON", "Common";
    }
}

/// Highest dependency class (`DTRACE_CLASS_MAX`).
pub const DTRACE_CLASS_MAX: u8 = 5;

/// `dtrace_attribute_t`: name stability, data stability, dependency class.
/// 3 bytes, alignment 1. Fields are raw so any byte pattern from user space
/// can be held; use [`Attribute::is_valid`] before trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Attribute {
    /// `dtat_name`: stability of the name.
    pub name: u8,
    /// `dtat_data`: stability of the data.
    pub data: u8,
    /// `dtat_class`: dependency class.
    pub class: u8,
}
/// C name of [`Attribute`].
pub type dtrace_attribute_t = Attribute;

abi_struct!(Attribute, size = 3, align = 1, { name @ 0, data @ 1, class @ 2 });

impl Attribute {
    /// Builds an attribute from typed parts.
    pub const fn new(name: Stability, data: Stability, class: DepClass) -> Self {
        Attribute {
            name: name as u8,
            data: data as u8,
            class: class as u8,
        }
    }

    /// Whether all three codes are in range (what `dtrace_register` checks).
    pub const fn is_valid(&self) -> bool {
        self.name <= DTRACE_STABILITY_MAX
            && self.data <= DTRACE_STABILITY_MAX
            && self.class <= DTRACE_CLASS_MAX
    }

    /// Packs the attribute the way DOF stores it: `name<<24 | data<<16 | class<<8`
    /// (`DOF_ATTR`).
    pub const fn to_dof(&self) -> u32 {
        ((self.name as u32) << 24) | ((self.data as u32) << 16) | ((self.class as u32) << 8)
    }

    /// Unpacks a DOF attribute word (`DOF_ATTR_NAME`/`DATA`/`CLASS`); the low
    /// byte is ignored.
    pub const fn from_dof(word: u32) -> Self {
        Attribute {
            name: (word >> 24) as u8,
            data: (word >> 16) as u8,
            class: (word >> 8) as u8,
        }
    }

    /// The least stable combination of two attributes (per component
    /// minimum), as libdtrace computes when combining interfaces.
    pub const fn min(self, other: Attribute) -> Attribute {
        const fn m(a: u8, b: u8) -> u8 {
            if a < b {
                a
            } else {
                b
            }
        }
        Attribute {
            name: m(self.name, other.name),
            data: m(self.data, other.data),
            class: m(self.class, other.class),
        }
    }
}

/// `dtrace_pattr_t`: a provider's five attribute triples. 15 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct PAttr {
    /// `dtpa_provider`: the provider name.
    pub provider: Attribute,
    /// `dtpa_mod`: module names.
    pub module: Attribute,
    /// `dtpa_func`: function names.
    pub function: Attribute,
    /// `dtpa_name`: probe names.
    pub name: Attribute,
    /// `dtpa_args`: probe arguments.
    pub args: Attribute,
}
/// C name of [`PAttr`].
pub type dtrace_pattr_t = PAttr;

abi_struct!(PAttr, size = 15, align = 1, {
    provider @ 0, module @ 3, function @ 6, name @ 9, args @ 12,
});

impl PAttr {
    /// Whether all five attributes are valid.
    pub const fn is_valid(&self) -> bool {
        self.provider.is_valid()
            && self.module.is_valid()
            && self.function.is_valid()
            && self.name.is_valid()
            && self.args.is_valid()
    }
}

bitflags::bitflags! {
    /// Privilege bits (`DTRACE_PRIV_*`) in `dtpp_flags` and consumer
    /// credentials.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PrivFlags: u32 {
        /// `DTRACE_PRIV_KERNEL`: may see kernel state.
        const KERNEL = 0x1;
        /// `DTRACE_PRIV_USER`: may see user state.
        const USER = 0x2;
        /// `DTRACE_PRIV_PROC`: may see process state.
        const PROC = 0x4;
        /// `DTRACE_PRIV_OWNER`: restricted to the owner's processes.
        const OWNER = 0x8;
        /// `DTRACE_PRIV_ZONEOWNER`: restricted to the owner's zone/jail.
        const ZONEOWNER = 0x10;
    }
}

/// `DTRACE_PRIV_NONE`.
pub const DTRACE_PRIV_NONE: u32 = 0;
/// `DTRACE_PRIV_ALL`: every privilege bit (what FreeBSD grants every opener).
pub const DTRACE_PRIV_ALL: u32 = PrivFlags::all().bits();

/// `dtrace_ppriv_t`: a provider's privilege requirements. 12 bytes on current
/// FreeBSD, where `zoneid_t` is 32 bits wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct PPriv {
    /// `dtpp_flags`: `DTRACE_PRIV_*` bits.
    pub flags: u32,
    /// `dtpp_uid`: owning user id.
    pub uid: u32,
    /// `dtpp_zoneid`: owning zone (jail) id.
    pub zoneid: u32,
}
/// C name of [`PPriv`].
pub type dtrace_ppriv_t = PPriv;

abi_struct!(PPriv, size = 12, align = 4, { flags @ 0, uid @ 4, zoneid @ 8 });

impl PPriv {
    /// The flag bits, unknown bits retained (so a validator can reject them).
    pub const fn flags(&self) -> PrivFlags {
        PrivFlags::from_bits_retain(self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stability_and_class_tables() {
        for (i, s) in Stability::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(Stability::try_from(i as u8), Ok(*s));
            assert_eq!(Stability::from_name(s.name()), Some(*s));
            assert_eq!(Stability::from_name(&s.name().to_uppercase()), Some(*s));
        }
        assert_eq!(Stability::ALL.len(), DTRACE_STABILITY_MAX as usize + 1);
        assert_eq!(Stability::try_from(8), Err(UnknownValue(8)));
        for (i, c) in DepClass::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(DepClass::try_from(i as u8), Ok(*c));
        }
        assert_eq!(DepClass::ALL.len(), DTRACE_CLASS_MAX as usize + 1);
        assert!(DepClass::try_from(6).is_err());
        assert_eq!(DepClass::from_name("isa"), Some(DepClass::Isa));
        assert_eq!(DepClass::from_name("Bogus"), None);
        assert!(Stability::Evolving > Stability::Unstable);
    }

    #[test]
    fn attribute_dof_packing() {
        let a = Attribute::new(Stability::Evolving, Stability::Stable, DepClass::Common);
        assert_eq!(a.to_dof(), 0x0506_0500);
        assert_eq!(Attribute::from_dof(0x0506_05ff), a);
        assert!(a.is_valid());
        assert!(!Attribute {
            name: 8,
            data: 0,
            class: 0
        }
        .is_valid());
        assert!(!Attribute {
            name: 0,
            data: 0,
            class: 6
        }
        .is_valid());
        let b = Attribute::new(Stability::Private, Stability::Standard, DepClass::Isa);
        assert_eq!(
            a.min(b),
            Attribute {
                name: 1,
                data: 6,
                class: 4
            }
        );
    }

    #[test]
    fn privileges() {
        assert_eq!(DTRACE_PRIV_ALL, 0x1f);
        let p = PPriv {
            flags: 0x21,
            uid: 0,
            zoneid: 0,
        };
        assert!(p.flags().contains(PrivFlags::KERNEL));
        assert!(!PrivFlags::all().contains(p.flags()));
    }
}
