//! ISO-8601 UTC timestamps with microseconds, as Carbon's `toISOString()`
//! prints them (`2024-05-01T12:34:56.123456Z`), without a date library.

/// Length of the formatted timestamp.
pub const ISO_LEN: usize = 27;

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats microseconds since the Unix epoch (years 0..=9999).
pub fn iso8601_micros(unix_us: i64) -> [u8; ISO_LEN] {
    let secs = unix_us.div_euclid(1_000_000);
    let micros = unix_us.rem_euclid(1_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u32);
    put(5, 2, mo);
    put(8, 2, d);
    put(11, 2, h);
    put(14, 2, mi);
    put(17, 2, s);
    put(20, 6, micros);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(us: i64) -> String {
        String::from_utf8(iso8601_micros(us).to_vec()).unwrap()
    }

    #[test]
    fn formats_like_carbon() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000Z");
        // date -u -d @1700000000 → 2023-11-14T22:13:20
        assert_eq!(iso(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(iso(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(iso(4_107_542_399_999_999), "2100-02-28T23:59:59.999999Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999999Z");
    }
}
