//! The FreeBSD release rdtrace.ko is built for, and what follows from it.
//!
//! The release is a build parameter (`FREEBSD_RELEASE`, default 15.0, checked
//! by build.rs), never guessed at run time. From it come the kernel-version
//! range of the module's `MDT_DEPEND` on `kernel` and the preferred offset of
//! `pc_cpuid` in `struct pcpu`. Not probe context (all of it is constant).

/// A FreeBSD release, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeBsdRelease {
    pub major: u32,
    pub minor: u32,
}

/// The release this build targets.
pub const TARGET_RELEASE: FreeBsdRelease =
    match FreeBsdRelease::parse(env!("RDTRACE_FREEBSD_RELEASE")) {
        Some(release) => release,
        None => panic!("RDTRACE_FREEBSD_RELEASE is not MAJOR.MINOR"),
    };

/// A kernel-version range as `struct mod_depend` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    pub minimum: i32,
    pub preferred: i32,
    pub maximum: i32,
}

impl FreeBsdRelease {
    /// Parse `"MAJOR.MINOR"` (decimal, minor below 100). Usable in constants.
    pub const fn parse(text: &str) -> Option<FreeBsdRelease> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut major: u32 = 0;
        let mut minor: u32 = 0;
        let mut seen_dot = false;
        let mut digits = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'.' {
                if seen_dot || digits == 0 {
                    return None;
                }
                seen_dot = true;
                digits = 0;
            } else if b.is_ascii_digit() {
                let d = (b - b'0') as u32;
                digits += 1;
                if digits > 4 {
                    return None;
                }
                if seen_dot {
                    minor = minor * 10 + d;
                } else {
                    major = major * 10 + d;
                }
            } else {
                return None;
            }
            i += 1;
        }
        if !seen_dot || digits == 0 || minor > 99 {
            return None;
        }
        Some(FreeBsdRelease { major, minor })
    }

    /// The lowest `__FreeBSD_version` (osreldate) of this release:
    /// `major * 100000 + minor * 1000` (14.2 → 1402000).
    pub const fn first_osreldate(self) -> i32 {
        (self.major * 100_000 + self.minor * 1000) as i32
    }

    /// The range of kernel versions the module accepts: from the first version
    /// of this release up to the last version of its major branch, like the
    /// range DECLARE_MODULE derives from `__FreeBSD_version` (14.2 →
    /// 1402000..=1499999). Starting at the release's first version rather than
    /// the exact `__FreeBSD_version` lets one build load on every patch level.
    pub const fn kernel_dependency(self) -> VersionRange {
        let minimum = self.first_osreldate();
        VersionRange {
            minimum,
            preferred: minimum,
            maximum: ((self.major + 1) * 100_000 - 1) as i32,
        }
    }

    /// Candidate byte offsets of `pc_cpuid` in `struct pcpu`, most likely first.
    ///
    /// The machine-independent head of `struct pcpu` gained a scheduler
    /// pointer (`pc_sched`) during 15-CURRENT, moving `pc_cpuid` from 52 to 60.
    /// The module checks the candidates against `pcpu_find()` for every CPU at
    /// load time and uses the first that is right for all of them.
    pub const fn pcpu_cpuid_offsets(self) -> [u32; 2] {
        if self.major >= 15 {
            [60, 52]
        } else {
            [52, 60]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_releases() {
        assert_eq!(
            FreeBsdRelease::parse("15.0"),
            Some(FreeBsdRelease {
                major: 15,
                minor: 0
            })
        );
        assert_eq!(
            FreeBsdRelease::parse("14.2"),
            Some(FreeBsdRelease {
                major: 14,
                minor: 2
            })
        );
        for bad in ["", "15", "15.", ".1", "15.0.1", "x.1", "15.100", "15,0"] {
            assert_eq!(FreeBsdRelease::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dependency_range_matches_real_14_2_modules() {
        // abi-facts §9: real 14.2 modules carry {1402000, 1402000, 1499999}.
        let range = FreeBsdRelease {
            major: 14,
            minor: 2,
        }
        .kernel_dependency();
        assert_eq!(
            range,
            VersionRange {
                minimum: 1_402_000,
                preferred: 1_402_000,
                maximum: 1_499_999
            }
        );
    }

    #[test]
    fn dependency_range_for_15_0_accepts_the_whole_branch() {
        let range = FreeBsdRelease {
            major: 15,
            minor: 0,
        }
        .kernel_dependency();
        assert_eq!(range.minimum, 1_500_000);
        assert_eq!(range.maximum, 1_599_999);
        // 15.0-RELEASE's own __FreeBSD_version lies inside the range.
        assert!((range.minimum..=range.maximum).contains(&1_500_068));
        assert!(!(range.minimum..=range.maximum).contains(&1_403_000));
    }

    #[test]
    fn target_release_is_what_the_build_was_given() {
        let expected = std::env::var("FREEBSD_RELEASE").unwrap_or_else(|_| "15.0".into());
        assert_eq!(FreeBsdRelease::parse(expected.trim()), Some(TARGET_RELEASE));
    }

    #[test]
    fn cpuid_offset_preference_follows_the_release() {
        assert_eq!(
            FreeBsdRelease {
                major: 15,
                minor: 0
            }
            .pcpu_cpuid_offsets(),
            [60, 52]
        );
        assert_eq!(
            FreeBsdRelease {
                major: 14,
                minor: 3
            }
            .pcpu_cpuid_offsets(),
            [52, 60]
        );
    }
}
