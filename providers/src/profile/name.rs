//! Parsing of profile provider probe names: `profile-<n>[unit]` and
//! `tick-<n>[unit]`, with the units FreeBSD's profile provider accepts.
//! A bare number, or the unit `hz`, is a frequency; every other unit is a
//! period. Intervals shorter than [`MIN_INTERVAL_NS`] are refused.
//!
//! Not probe context.

/// Shortest interval a profile/tick probe may have (200 µs).
pub const MIN_INTERVAL_NS: u64 = 200_000;

/// Which kind of probe a name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileKind {
    /// `profile-*`: fires on every CPU.
    Profile,
    /// `tick-*`: fires on one CPU.
    Tick,
}

impl ProfileKind {
    /// The name prefix, including the dash.
    pub fn prefix(self) -> &'static str {
        match self {
            ProfileKind::Profile => "profile-",
            ProfileKind::Tick => "tick-",
        }
    }
}

/// Why a name is not a profile probe name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Neither `profile-` nor `tick-`.
    NoPrefix,
    /// No digits after the prefix, or a number too large for 64 bits.
    BadNumber,
    /// The text after the number is not a known unit.
    UnknownUnit,
    /// The rate or period is zero, or the period is below the minimum.
    TooShort,
}

/// A unit and its multiplier in nanoseconds; 0 means "the number is a rate in Hz".
const UNITS: [(&str, u64); 16] = [
    ("ns", 1),
    ("nsec", 1),
    ("us", 1_000),
    ("usec", 1_000),
    ("ms", 1_000_000),
    ("msec", 1_000_000),
    ("s", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("min", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("hour", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
    ("day", 86_400 * 1_000_000_000),
    ("hz", 0),
    ("", 0),
];

/// Parse a probe name into its kind and interval in nanoseconds.
pub fn parse(name: &str) -> Result<(ProfileKind, u64), NameError> {
    let (kind, rest) = if let Some(rest) = name.strip_prefix(ProfileKind::Profile.prefix()) {
        (ProfileKind::Profile, rest)
    } else if let Some(rest) = name.strip_prefix(ProfileKind::Tick.prefix()) {
        (ProfileKind::Tick, rest)
    } else {
        return Err(NameError::NoPrefix);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = rest.split_at(digits);
    if number.is_empty() {
        return Err(NameError::BadNumber);
    }
    let value: u64 = number.parse().map_err(|_| NameError::BadNumber)?;
    let multiplier = UNITS
        .iter()
        .find(|(spelling, _)| *spelling == unit)
        .map(|(_, mult)| *mult)
        .ok_or(NameError::UnknownUnit)?;
    let interval = if multiplier == 0 {
        if value == 0 {
            return Err(NameError::TooShort);
        }
        1_000_000_000 / value
    } else {
        value.checked_mul(multiplier).ok_or(NameError::BadNumber)?
    };
    if interval < MIN_INTERVAL_NS {
        return Err(NameError::TooShort);
    }
    Ok((kind, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit() {
        let cases: [(&str, u64); 17] = [
            ("profile-97", 1_000_000_000 / 97),
            ("profile-97hz", 1_000_000_000 / 97),
            ("tick-1", 1_000_000_000),
            ("tick-5000hz", 200_000),
            ("tick-200000ns", 200_000),
            ("tick-300000nsec", 300_000),
            ("tick-250us", 250_000),
            ("tick-999usec", 999_000),
            ("tick-10ms", 10_000_000),
            ("tick-3msec", 3_000_000),
            ("tick-2s", 2_000_000_000),
            ("tick-4sec", 4_000_000_000),
            ("tick-1m", 60_000_000_000),
            ("tick-2min", 120_000_000_000),
            ("tick-1h", 3_600_000_000_000),
            ("tick-3hour", 10_800_000_000_000),
            ("profile-2day", 172_800_000_000_000),
        ];
        for (name, want) in cases {
            assert_eq!(parse(name).map(|(_, ns)| ns), Ok(want), "{name}");
        }
        assert_eq!(
            parse("tick-1d"),
            Ok((ProfileKind::Tick, 86_400_000_000_000))
        );
        assert_eq!(
            parse("profile-1ms").map(|(k, _)| k),
            Ok(ProfileKind::Profile)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("tick-199us"), Err(NameError::TooShort));
        assert_eq!(parse("profile-5001"), Err(NameError::TooShort));
        assert_eq!(parse("profile-0"), Err(NameError::TooShort));
        assert_eq!(parse("tick-0s"), Err(NameError::TooShort));
        assert_eq!(parse("tick-"), Err(NameError::BadNumber));
        assert_eq!(parse("tick-hz"), Err(NameError::BadNumber));
        assert_eq!(parse("tick--5"), Err(NameError::BadNumber));
        assert_eq!(parse("tick-5fortnights"), Err(NameError::UnknownUnit));
        assert_eq!(parse("tick-5 s"), Err(NameError::UnknownUnit));
        assert_eq!(
            parse("tick-99999999999999999999"),
            Err(NameError::BadNumber)
        );
        assert_eq!(parse("tick-999999999999d"), Err(NameError::BadNumber));
        assert_eq!(parse("tock-1"), Err(NameError::NoPrefix));
        assert_eq!(parse("profile-*"), Err(NameError::BadNumber));
    }
}
