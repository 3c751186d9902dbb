//! JSON primitives that produce exactly the bytes of PHP's `json_encode()`
//! with default flags, the encoder Laravel's broadcasters use:
//! `/` is escaped as `\/`, non-ASCII characters as `\uXXXX` (UTF-16, lowercase
//! hex), floats in the shortest round-trip form with PHP's exponent rules
//! (`1.0e+20`, `1.5e-7`, `20` for `20.0`), and NaN/INF are errors.
//! Matching byte for byte lets a subscriber compare our messages with
//! Laravel's, and keeps every existing consumer working.

use std::fmt::{self, Write as _};

/// A string that is not valid UTF-8; `at` is the offset of the first bad byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8 {
    pub at: usize,
}

/// NaN or an infinity, which JSON cannot represent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite(pub f64);

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            f.write_str("NAN")
        } else if self.0 > 0.0 {
            f.write_str("INF")
        } else {
            f.write_str("-INF")
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that cannot be copied through unchanged: controls, `"`, `\`, `/`
/// and the start of any non-ASCII sequence.
const fn escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20
            || i >= 0x80
            || i == b'"' as usize
            || i == b'\\' as usize
            || i == b'/' as usize;
        i += 1;
    }
    t
}
static NEEDS_ESCAPE: [bool; 256] = escape_table();

fn push_u_escape(out: &mut Vec<u8>, unit: u16) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xf],
        HEX[(unit >> 8) as usize & 0xf],
        HEX[(unit >> 4) as usize & 0xf],
        HEX[unit as usize & 0xf],
    ]);
}

fn push_escaped_ascii(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'/' => out.extend_from_slice(b"\\/"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => push_u_escape(out, b as u16),
    }
}

/// Appends `s` as a quoted JSON string. On invalid UTF-8 nothing is appended.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), InvalidUtf8> {
    let start = out.len();
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0; // start of the pending run of bytes copied unchanged
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !NEEDS_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&s[run..i]);
        if b < 0x80 {
            push_escaped_ascii(out, b);
            i += 1;
            run = i;
            continue;
        }
        // Validate the whole non-ASCII remainder once, then walk its chars.
        let rest = match std::str::from_utf8(&s[i..]) {
            Ok(rest) => rest,
            Err(e) => {
                out.truncate(start);
                return Err(InvalidUtf8 {
                    at: i + e.valid_up_to(),
                });
            }
        };
        for c in rest.chars() {
            if c.is_ascii() {
                if NEEDS_ESCAPE[c as usize] {
                    push_escaped_ascii(out, c as u8);
                } else {
                    out.push(c as u8);
                }
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u_escape(out, *unit);
                }
            }
        }
        out.push(b'"');
        return Ok(());
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
    Ok(())
}

/// Appends `s` as a quoted JSON string the way `JSON.stringify` (and PHP with
/// `JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE`) writes it: only `"`, `\`
/// and control characters are escaped. This is what the Pusher SDKs sign for
/// presence `channel_data` and user data.
pub fn write_string_unescaped(out: &mut Vec<u8>, s: &[u8]) -> Result<(), InvalidUtf8> {
    let text = std::str::from_utf8(s).map_err(|e| InvalidUtf8 {
        at: e.valid_up_to(),
    })?;
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 => push_u_escape(out, b as u16),
            b => out.push(b),
        }
    }
    out.push(b'"');
    Ok(())
}

/// Appends an integer.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// A fixed stack buffer for `core::fmt` output, so formatting a float does not allocate.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Digits and decimal exponent of Rust's `{:e}` output (`1.2345e17`).
fn split_exp(text: &[u8]) -> ([u8; 20], usize, i32) {
    let e_at = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let mut digits = [0u8; 20];
    let mut nd = 0;
    for &b in &text[..e_at] {
        if b != b'.' && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let exp = std::str::from_utf8(&text[(e_at + 1).min(text.len())..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (digits, nd, exp)
}

/// Appends a float as PHP does with `serialize_precision = -1`
/// (`php_gcvt` with the shortest round-trip digits, precision 17).
pub fn write_f64(out: &mut Vec<u8>, v: f64) -> Result<(), NonFinite> {
    if !v.is_finite() {
        return Err(NonFinite(v));
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like zend_dtoa mode 0:
    // "1.2345e17", "5e-1", "0e0".
    let mut sb = StackBuf {
        buf: [0; 40],
        len: 0,
    };
    if write!(sb, "{:e}", v.abs()).is_err() {
        return Err(NonFinite(v)); // cannot happen for a finite f64
    }
    let (mut digits, mut nd, mut exp) = split_exp(&sb.buf[..sb.len]);
    // Among shortest representations PHP (David Gay's dtoa) takes the one
    // closest to the exact value, ties to even; Rust's shortest mode rounds
    // ties up. An exact tie needs the value's full expansion to have nd + 1
    // digits, which is only possible from 15 digits on (any decimal of 15 or
    // fewer digits round-trips uniquely), so only then re-round exactly.
    if nd >= 15 {
        let mut exact = StackBuf {
            buf: [0; 40],
            len: 0,
        };
        if write!(exact, "{:.*e}", nd - 1, v.abs()).is_ok() {
            let (d2, n2, e2) = split_exp(&exact.buf[..exact.len]);
            let round_trips = std::str::from_utf8(&exact.buf[..exact.len])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                == Some(v.abs());
            if n2 == nd && round_trips {
                (digits, nd, exp) = (d2, n2, e2);
            }
        }
    }
    let digits = &digits[..nd];
    // zend_dtoa's decpt: value = 0.DIGITS * 10^decpt
    let decpt = exp + 1;
    const PRECISION: i32 = 17;
    // php_gcvt: exponential when decpt < -3 or decpt > precision.
    if !(-3..=PRECISION).contains(&decpt) {
        // Exponential: d.ddd e±x, with ".0" when there is a single digit.
        out.push(digits[0]);
        out.push(b'.');
        if digits.len() == 1 {
            out.push(b'0');
        } else {
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = decpt - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        write_i64(out, e.unsigned_abs() as i64);
    } else if decpt <= 0 {
        // 0.000ddd
        out.extend_from_slice(b"0.");
        for _ in decpt..0 {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let decpt = decpt as usize;
        if digits.len() <= decpt {
            out.extend_from_slice(digits);
            for _ in digits.len()..decpt {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..decpt]);
            out.push(b'.');
            out.extend_from_slice(&digits[decpt..]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn s(v: &[u8]) -> Result<String, InvalidUtf8> {
        let mut out = b"x".to_vec();
        write_string(&mut out, v)?;
        Ok(String::from_utf8(out[1..].to_vec()).unwrap())
    }

    #[test]
    // The tie cases spell out exact binary values on purpose.
    #[allow(clippy::excessive_precision)]
    fn floats_match_php_json_encode() {
        // Expected values printed by PHP 8.2: json_encode([...]).
        let cases: &[(f64, &str)] = &[
            (20.0, "20"),
            (0.1, "0.1"),
            (1e20, "1.0e+20"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1e17, "1.0e+17"),
            (1.5e-7, "1.5e-7"),
            (-0.0, "-0"),
            (0.0, "0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e22, "1.0e+22"),
            (0.00001, "1.0e-5"),
            (0.0001, "0.0001"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e300, "1.0e+300"),
            (-42.125, "-42.125"),
            (0.5, "0.5"),
            (21.3, "21.3"),
            (5e-324, "5.0e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (9007199254740993.0, "9007199254740992"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-7, "1.0e-7"),
            (123e-20, "1.23e-18"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1234.5e10, "12345000000000"),
            // An exact tie between two shortest forms: PHP rounds to even.
            (-83360943283588.125, "-83360943283588.12"),
            (83360943283588.135, "83360943283588.14"),
        ];
        for (v, want) in cases {
            assert_eq!(f(*v), *want, "{v:e}");
        }
        let mut out = Vec::new();
        assert!(write_f64(&mut out, f64::NAN).is_err());
        assert!(write_f64(&mut out, f64::NEG_INFINITY).is_err());
        assert!(out.is_empty());
        assert_eq!(NonFinite(f64::NAN).to_string(), "NAN");
        assert_eq!(NonFinite(f64::NEG_INFINITY).to_string(), "-INF");
    }

    #[test]
    fn strings_match_php_json_encode() {
        assert_eq!(s(b"a/b").unwrap(), r#""a\/b""#);
        assert_eq!(s("é😀".as_bytes()).unwrap(), r#""\u00e9\ud83d\ude00""#);
        assert_eq!(s(b"\x7f\x01").unwrap(), "\"\x7f\\u0001\"");
        assert_eq!(
            s(b"q\"b\\n\n\t\r\x08\x0c").unwrap(),
            r#""q\"b\\n\n\t\r\b\f""#
        );
        assert_eq!(s(b"").unwrap(), r#""""#);
        assert_eq!(s("ab€/\"c".as_bytes()).unwrap(), r#""ab\u20ac\/\"c""#);
    }

    #[test]
    fn invalid_utf8_is_refused_and_leaves_output_untouched() {
        assert_eq!(s(b"ok\xffno"), Err(InvalidUtf8 { at: 2 }));
        assert_eq!(s(b"\xc3"), Err(InvalidUtf8 { at: 0 }));
        assert_eq!(s(b"\xed\xa0\x80"), Err(InvalidUtf8 { at: 0 })); // surrogate
        assert_eq!(s(b"\xc0\xaf"), Err(InvalidUtf8 { at: 0 })); // overlong
        assert_eq!(s("é".as_bytes()).map(|_| ()), Ok(()));
        let mut out = b"keep".to_vec();
        assert!(write_string(&mut out, b"a\xff").is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn unescaped_strings_keep_slashes_and_unicode() {
        let mut out = Vec::new();
        write_string_unescaped(&mut out, "a/b é😀 \"q\" \\ \t\n\x01".as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a/b é😀 \\\"q\\\" \\\\ \\t\\n\\u0001\""
        );
        assert!(write_string_unescaped(&mut Vec::new(), b"\xff").is_err());
    }

    #[test]
    fn integers() {
        for v in [0i64, 7, -7, i64::MAX, i64::MIN, 1_000_000] {
            let mut out = Vec::new();
            write_i64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }
}
