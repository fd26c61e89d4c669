//! Release ids (`20261126T051944Z-1a2b3c4`) and UTC timestamps, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day, hour, minute, second) in UTC.
fn parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = civil((secs / 86_400) as i64);
    let s = secs % 86_400;
    (y, m, d, s / 3600, s % 3600 / 60, s % 60)
}

/// `20261126T051944Z-1a2b3c4`: sortable by time, naming the commit.
pub fn release_id(t: SystemTime, commit: &str) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{}", &commit[..commit.len().min(7)])
}

/// RFC 3339 UTC, second precision: `2026-11-26T05:19:44Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Is this a release id `deploy` could have made (used to check `--to`)?
pub fn looks_like_release_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 18
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_670_384); // 2026-11-26T05:19:44Z
        assert_eq!(rfc3339(t), "2026-11-26T05:19:44Z");
        assert_eq!(release_id(t, "1a2b3c4d5e6f"), "20261126T051944Z-1a2b3c4");
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
