//! Time as documents record it: RFC 3339 dates, and the clock a command runs with.
//!
//! The library never reads the clock or the environment itself: the caller decides what "now"
//! is ([`Clock`]), so that a build can be reproducible (`SOURCE_DATE_EPOCH`) and a test can pin
//! the time.

use crate::error::{Error, Result};

/// The time a writing operation records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// `SOURCE_DATE_EPOCH`, when the caller has one: every recorded time is this one.
    pub source_date_epoch: Option<u64>,
    /// The wall clock, in seconds since 1970-01-01 UTC.
    pub now: u64,
}

impl Clock {
    /// A clock fixed at `secs`, as if `SOURCE_DATE_EPOCH` were set to it.
    pub fn fixed(secs: u64) -> Clock {
        Clock {
            source_date_epoch: Some(secs),
            now: secs,
        }
    }

    /// When something is created (a `created` field or annotation): `SOURCE_DATE_EPOCH`, or now.
    pub fn created(&self) -> u64 {
        self.source_date_epoch.unwrap_or(self.now)
    }

    /// The modification time of files in reproducible tars: `SOURCE_DATE_EPOCH`, or 0.
    pub fn mtime(&self) -> u64 {
        self.source_date_epoch.unwrap_or(0)
    }
}

/// Parses the value of `SOURCE_DATE_EPOCH`: `None` when empty, an error when it is not a whole
/// number of seconds.
pub fn parse_source_date_epoch(text: &str) -> Result<Option<u64>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| Error::InvalidInput {
            what: format!("SOURCE_DATE_EPOCH is {text:?};"),
            reason: "it must be a non-negative whole number of seconds since 1970-01-01".into(),
        })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = b.get(range)?;
        if slice.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(slice).ok()?.parse().ok()
        } else {
            None
        }
    };
    let check = || -> Option<()> {
        let year = digits(0..4)?;
        (b.get(4) == Some(&b'-')).then_some(())?;
        let month = digits(5..7)?;
        (b.get(7) == Some(&b'-')).then_some(())?;
        let day = digits(8..10)?;
        matches!(b.get(10), Some(b'T' | b't')).then_some(())?;
        let hour = digits(11..13)?;
        (b.get(13) == Some(&b':')).then_some(())?;
        let minute = digits(14..16)?;
        (b.get(16) == Some(&b':')).then_some(())?;
        let second = digits(17..19)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= days && hour < 24 && minute < 60 && second <= 60).then_some(())?;
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i > start).then_some(())?;
        }
        match b.get(i) {
            Some(b'Z' | b'z') => (i + 1 == b.len()).then_some(()),
            Some(b'+' | b'-') => {
                let oh = digits(i + 1..i + 3)?;
                (b.get(i + 3) == Some(&b':')).then_some(())?;
                let om = digits(i + 4..i + 6)?;
                (oh < 24 && om < 60 && i + 6 == b.len()).then_some(())
            }
            _ => None,
        }
    };
    check().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn source_date_epoch_parsing() {
        assert_eq!(
            parse_source_date_epoch("1704067200").unwrap(),
            Some(1_704_067_200)
        );
        assert_eq!(parse_source_date_epoch(" 7 ").unwrap(), Some(7));
        assert_eq!(parse_source_date_epoch("").unwrap(), None);
        assert!(parse_source_date_epoch("yesterday").is_err());
        assert!(parse_source_date_epoch("-1").is_err());
    }

    #[test]
    fn clock_prefers_source_date_epoch() {
        let clock = Clock {
            source_date_epoch: None,
            now: 99,
        };
        assert_eq!((clock.created(), clock.mtime()), (99, 0));
        assert_eq!((Clock::fixed(5).created(), Clock::fixed(5).mtime()), (5, 5));
    }
}
