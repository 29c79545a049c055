//! Probe descriptions: splitting `provider:module:function:name` (right to left, as D does),
//! glob matching (`*`, `?`, `[...]`, `\`), and the [`ProbeMatcher`] interface through which the
//! compiler asks which probes exist (libdtrace checks this at compile time: `D_PDESC_ZERO`).
//! [`StaticProbes`] is a matcher over a fixed list plus the profile provider's on-demand
//! `profile-N`/`tick-N` names; the consumer can supply the kernel's real list instead.
//! Userland only.

use super::errors::{err, CResult};

/// A probe description split into its four fields (empty = match anything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeDesc {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
}

impl ProbeDesc {
    /// `provider:module:function:name`.
    pub fn full(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.provider, self.module, self.function, self.name
        )
    }
}

/// Splits a description. Fewer than four fields fill from the right (`BEGIN` is the name).
pub fn split_desc(s: &str, line: u32) -> CResult<ProbeDesc> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 4 {
        return err(
            "D_PDESC_INVAL",
            line,
            format!(
                "invalid probe description \"{}\": Overspecified probe description",
                s
            ),
        );
    }
    let mut f = [String::new(), String::new(), String::new(), String::new()];
    let off = 4 - parts.len();
    for (i, p) in parts.iter().enumerate() {
        f[off + i] = (*p).to_string();
    }
    let [provider, module, function, name] = f;
    Ok(ProbeDesc {
        provider,
        module,
        function,
        name,
    })
}

/// A probe description written as a bare probe identifier (`1 { ... }`), resolved to that
/// probe's full description as libdtrace does (`D_PDESC_INVAL` for an id beyond 32 bits or
/// one no probe has). `None` when `text` is not made of digits only.
pub fn resolve_probe_id(
    text: &str,
    line: u32,
    matcher: &dyn ProbeMatcher,
) -> Option<CResult<ProbeDesc>> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let Ok(id) = digits.parse::<u32>() else {
        return Some(err(
            "D_PDESC_INVAL",
            line,
            format!("identifier {digits} exceeds maximum probe id"),
        ));
    };
    Some(match matcher.probe_by_id(id).filter(|_| id != 0) {
        Some(desc) => Ok(desc),
        None => err(
            "D_PDESC_INVAL",
            line,
            format!("invalid probe identifier {id}: Unknown probe identifier"),
        ),
    })
}

/// Shell-style glob match as DTrace uses for probe descriptions.
pub fn gmatch(s: &str, pat: &str) -> bool {
    fn m(s: &[u8], p: &[u8]) -> bool {
        if p.is_empty() {
            return s.is_empty();
        }
        match p[0] {
            b'*' => (0..=s.len()).any(|i| m(&s[i..], &p[1..])),
            b'?' => !s.is_empty() && m(&s[1..], &p[1..]),
            b'[' => {
                let Some(close) = p.iter().skip(1).position(|&c| c == b']').map(|x| x + 1) else {
                    return !s.is_empty() && s[0] == b'[' && m(&s[1..], &p[1..]);
                };
                if s.is_empty() {
                    return false;
                }
                let set = &p[1..close];
                let (neg, set) = if set.first() == Some(&b'!') {
                    (true, &set[1..])
                } else {
                    (false, set)
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        if set[i] <= s[0] && s[0] <= set[i + 2] {
                            hit = true;
                        }
                        i += 3;
                    } else {
                        if set[i] == s[0] {
                            hit = true;
                        }
                        i += 1;
                    }
                }
                hit != neg && m(&s[1..], &p[close + 1..])
            }
            b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&s[1..], &p[2..]),
            c => !s.is_empty() && s[0] == c && m(&s[1..], &p[1..]),
        }
    }
    m(s.as_bytes(), pat.as_bytes())
}

/// Answers "how many probes does this description match?".
pub trait ProbeMatcher {
    fn count_matches(&self, desc: &ProbeDesc) -> usize;
    /// How many typed arguments (`args[]`) the probes matching `desc` have, if known.
    fn typed_args(&self, _desc: &ProbeDesc) -> Option<usize> {
        None
    }
    /// The probe whose identifier is `id` (a bare integer used as a probe description), if
    /// this probe source knows it.
    fn probe_by_id(&self, _id: u32) -> Option<ProbeDesc> {
        None
    }
    /// Looks up a kernel symbol for `` module`name `` (module `None` for `` `name ``, which
    /// searches every module). Without kernel symbol tables (the hosted kernel) nothing is
    /// found; a FreeBSD implementation answers from the kernel's and modules' symbol tables.
    fn kernel_symbol(&self, module: Option<&str>, _name: &str) -> SymbolLookup {
        match module {
            Some(m) if m != "kernel" => SymbolLookup::NoModule,
            _ => SymbolLookup::NoSymbol,
        }
    }
}

/// The answer to a kernel symbol lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolLookup {
    /// The symbol, its object (module) and address.
    Found {
        object: String,
        name: String,
        addr: u64,
        size: u64,
    },
    /// The named module is not loaded (libdtrace's "Unknown module name").
    NoModule,
    /// No such symbol (libdtrace's "Unknown symbol name").
    NoSymbol,
}

/// A fixed probe list plus the profile provider's creatable probes.
#[derive(Debug, Clone)]
pub struct StaticProbes {
    /// Existing probes as (provider, module, function, name).
    pub probes: Vec<ProbeDesc>,
    /// Whether the profile provider is present (creates `profile-N`/`tick-N` on demand).
    pub profile: bool,
}

impl StaticProbes {
    /// The probes of the hosted kernel: dtrace BEGIN/END/ERROR and the profile provider.
    pub fn hosted() -> Self {
        let mut probes = Vec::new();
        for n in ["BEGIN", "END", "ERROR"] {
            probes.push(ProbeDesc {
                provider: "dtrace".into(),
                name: n.into(),
                ..Default::default()
            });
        }
        for r in ["97", "199", "499", "997", "1999", "4001", "4999"] {
            probes.push(ProbeDesc {
                provider: "profile".into(),
                name: format!("profile-{}", r),
                ..Default::default()
            });
        }
        for r in ["1", "10", "100", "500", "1000", "5000"] {
            probes.push(ProbeDesc {
                provider: "profile".into(),
                name: format!("tick-{}", r),
                ..Default::default()
            });
        }
        StaticProbes {
            probes,
            profile: true,
        }
    }
}

/// Whether `name` is a profile-provider name the provider would create (`profile-997hz`,
/// `tick-10ms`...): a rate or interval no faster than 200 microseconds.
pub fn profile_name_valid(name: &str) -> bool {
    let rest = if let Some(r) = name.strip_prefix("profile-") {
        r
    } else if let Some(r) = name.strip_prefix("tick-") {
        r
    } else {
        return false;
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(val) = digits.parse::<u64>() else {
        return false;
    };
    let suffix = &rest[digits.len()..];
    let ns_per: u64 = match suffix {
        "" | "hz" => {
            if val == 0 {
                return false;
            }
            let interval = 1_000_000_000 / val;
            return interval >= 200_000;
        }
        "ns" | "nsec" => 1,
        "us" | "usec" => 1_000,
        "ms" | "msec" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" | "hour" => 3_600_000_000_000,
        "d" | "day" => 86_400_000_000_000,
        _ => return false,
    };
    val.saturating_mul(ns_per) >= 200_000
}

impl ProbeMatcher for StaticProbes {
    /// The dtrace and profile providers give no argument types.
    fn typed_args(&self, _desc: &ProbeDesc) -> Option<usize> {
        Some(0)
    }

    /// Only the dtrace provider's probes have fixed identifiers (BEGIN, END, ERROR are 1-3).
    fn probe_by_id(&self, id: u32) -> Option<ProbeDesc> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.probes
            .iter()
            .take(3)
            .enumerate()
            .find(|(i, p)| *i == index && p.provider == "dtrace")
            .map(|(_, p)| p.clone())
    }

    fn count_matches(&self, d: &ProbeDesc) -> usize {
        let field = |s: &str, p: &str| p.is_empty() || gmatch(s, p);
        let mut n = self
            .probes
            .iter()
            .filter(|p| {
                field(&p.provider, &d.provider)
                    && field(&p.module, &d.module)
                    && field(&p.function, &d.function)
                    && field(&p.name, &d.name)
            })
            .count();
        // The profile provider creates a probe for an exact, valid name that is not listed yet.
        let exact = |s: &str| !s.contains(['*', '?', '[', '\\']);
        if self.profile
            && n == 0
            && (d.provider.is_empty() || d.provider == "profile")
            && d.module.is_empty()
            && d.function.is_empty()
            && exact(&d.name)
            && profile_name_valid(&d.name)
        {
            n = 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_right_to_left() {
        let d = split_desc("BEGIN", 1).unwrap();
        assert_eq!(d.full(), ":::BEGIN");
        let d = split_desc("profile::tick-1sec", 1).unwrap();
        assert_eq!(d.full(), ":profile::tick-1sec");
        assert_eq!(split_desc("a:b:c:d:e", 3).unwrap_err().tag, "D_PDESC_INVAL");
    }

    #[test]
    fn globbing() {
        assert!(gmatch("tick-1000", "tick-*"));
        assert!(gmatch("exit", "?xi?"));
        assert!(gmatch("b", "[a-c]"));
        assert!(!gmatch("d", "[a-c]"));
        assert!(!gmatch("BEGIN", "BEGIN?"));
    }

    #[test]
    fn bare_integers_name_probes_by_id() {
        let h = StaticProbes::hosted();
        let end = resolve_probe_id("2", 1, &h).unwrap().unwrap();
        assert_eq!(end.full(), "dtrace:::END");
        assert!(resolve_probe_id("BEGIN", 1, &h).is_none());
        assert!(resolve_probe_id("tick-1s", 1, &h).is_none());
        let unknown = resolve_probe_id("4000", 7, &h).unwrap().unwrap_err();
        assert_eq!(unknown.tag, "D_PDESC_INVAL");
        assert_eq!(
            unknown.message,
            "invalid probe identifier 4000: Unknown probe identifier"
        );
        let zero = resolve_probe_id("0", 1, &h).unwrap().unwrap_err();
        assert!(zero.message.contains("identifier 0"), "{}", zero.message);
        let huge = resolve_probe_id("99999999999", 1, &h).unwrap().unwrap_err();
        assert_eq!(
            huge.message,
            "identifier 99999999999 exceeds maximum probe id"
        );
    }

    #[test]
    fn hosted_matching() {
        let h = StaticProbes::hosted();
        assert_eq!(h.count_matches(&split_desc("BEGIN", 1).unwrap()), 1);
        assert_eq!(h.count_matches(&split_desc("dtrace:::", 1).unwrap()), 3);
        assert_eq!(h.count_matches(&split_desc("tick-10ms", 1).unwrap()), 1);
        assert_eq!(h.count_matches(&split_desc("profile-1ns", 1).unwrap()), 0);
        assert_eq!(
            h.count_matches(&split_desc("BEGIN::read:entry", 1).unwrap()),
            0
        );
        assert_eq!(
            h.count_matches(&split_desc("profile:::test", 1).unwrap()),
            0
        );
    }
}
