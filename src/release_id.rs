//! Release ids (`20261126T051944Z-1a2b3c4`) and UTC timestamps, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm; his names: era,
/// day of era, year of era, day of year, month from March).
fn civil(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let doe = shifted.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A time in UTC, to the second.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn utc(time: SystemTime) -> Utc {
    let secs = time.duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
    let (year, month, day) = civil((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    Utc { year, month, day, hour: of_day / 3600, minute: of_day % 3600 / 60, second: of_day % 60 }
}

/// `20261126T051944Z-1a2b3c4`: sortable by time, naming the commit.
pub fn release_id(time: SystemTime, commit: &str) -> String {
    let Utc { year, month, day, hour, minute, second } = utc(time);
    let short = &commit[..commit.len().min(7)];
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z-{short}")
}

/// RFC 3339 UTC, second precision: `2026-11-26T05:19:44Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let Utc { year, month, day, hour, minute, second } = utc(time);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Is this a release id `deploy` could have made (used to check `--to`)?
pub fn looks_like_release_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 18
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'Z'
        && bytes[16] == b'-'
        && bytes[17..].iter().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let time = UNIX_EPOCH + Duration::from_secs(1_795_670_384); // 2026-11-26T05:19:44Z
        assert_eq!(rfc3339(time), "2026-11-26T05:19:44Z");
        assert_eq!(release_id(time, "1a2b3c4d5e6f"), "20261126T051944Z-1a2b3c4");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn recognises_ids() {
        assert!(looks_like_release_id("20261126T051944Z-1a2b3c4"));
        assert!(!looks_like_release_id("20261126T051944Z-"));
        assert!(!looks_like_release_id("../../etc"));
        assert!(!looks_like_release_id("20261126T051944Z-1a2b3c4; rm -rf /"));
    }
}
