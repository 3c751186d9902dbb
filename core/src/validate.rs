//! Pusher's naming rules, checked identically by the extension (to throw a
//! clear exception at the call) and by the sidecar (to refuse hostile input).

use std::fmt;

/// Longest channel name Pusher accepts.
pub const MAX_CHANNEL_LEN: usize = 200;
/// Longest event name Pusher accepts.
pub const MAX_EVENT_LEN: usize = 200;

/// Why a name was refused. Messages are written to end a sentence such as
/// "Argument #2 ($channel) ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        len: usize,
        max: usize,
    },
    /// A byte outside the allowed set, with its position.
    BadChar {
        byte: u8,
        at: usize,
    },
    NotUtf8,
    /// Not of the form `digits.digits`.
    BadSocketId,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("must not be empty"),
            Self::TooLong { len, max } => write!(f, "is {len} bytes long, the limit is {max}"),
            Self::BadChar { byte, at } if byte.is_ascii_graphic() || *byte == b' ' => write!(
                f,
                "contains '{}' at offset {at}; allowed are A-Z a-z 0-9 _ - = @ , . ;",
                *byte as char
            ),
            Self::BadChar { byte, at } => write!(
                f,
                "contains byte 0x{byte:02x} at offset {at}; allowed are A-Z a-z 0-9 _ - = @ , . ;"
            ),
            Self::NotUtf8 => f.write_str("is not valid UTF-8"),
            Self::BadSocketId => f.write_str("must look like \"1234.5678\" (digits.digits)"),
        }
    }
}

impl std::error::Error for NameError {}

fn channel_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}

/// Channel names: 1..=200 bytes of `[A-Za-z0-9_\-=@,.;]`.
pub fn channel_name(name: &[u8]) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_CHANNEL_LEN,
        });
    }
    if let Some(at) = name.iter().position(|&b| !channel_byte_ok(b)) {
        return Err(NameError::BadChar { byte: name[at], at });
    }
    // All bytes are ASCII, so this cannot fail.
    std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)
}

/// Event names: 1..=200 bytes of valid UTF-8.
pub fn event_name(name: &[u8]) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_EVENT_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_EVENT_LEN,
        });
    }
    std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)
}

/// Socket ids as Pusher issues them: `^\d+\.\d+$`.
pub fn socket_id(id: &[u8]) -> Result<&str, NameError> {
    let Some(dot) = id.iter().position(|&b| b == b'.') else {
        return Err(NameError::BadSocketId);
    };
    let (a, b) = (&id[..dot], &id[dot + 1..]);
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if id.len() > 64 || !digits(a) || !digits(b) {
        return Err(NameError::BadSocketId);
    }
    std::str::from_utf8(id).map_err(|_| NameError::NotUtf8)
}

/// `*`-glob match of a channel pattern (`scada-*`, `*-live`, `a*b`).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("scada-*", "scada-realtime", true),
            ("scada-*", "scada-", true),
            ("scada-*", "xscada-1", false),
            ("*-live", "plant.1-live", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*", "anything", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn channel_names_follow_pushers_rules() {
        for ok in [
            "scada-data",
            "private-plc.1",
            "presence-room_1",
            "a=b@c,d;e",
            &"x".repeat(200),
        ] {
            assert!(channel_name(ok.as_bytes()).is_ok(), "{ok}");
        }
        assert_eq!(channel_name(b""), Err(NameError::Empty));
        assert_eq!(
            channel_name("x".repeat(201).as_bytes()),
            Err(NameError::TooLong { len: 201, max: 200 })
        );
        assert_eq!(
            channel_name(b"bad name"),
            Err(NameError::BadChar { byte: b' ', at: 3 })
        );
        assert_eq!(
            channel_name(b"a:b"),
            Err(NameError::BadChar { byte: b':', at: 1 })
        );
        assert_eq!(
            channel_name("é".as_bytes()),
            Err(NameError::BadChar { byte: 0xc3, at: 0 })
        );
        assert!(NameError::BadChar { byte: b' ', at: 3 }
            .to_string()
            .contains("' ' at offset 3"));
    }

    #[test]
    fn event_names_are_utf8_and_bounded() {
        assert!(event_name(b"App\\Events\\Thing").is_ok());
        assert!(event_name("ünïcode.event".as_bytes()).is_ok());
        assert_eq!(event_name(b""), Err(NameError::Empty));
        assert_eq!(event_name(b"\xff"), Err(NameError::NotUtf8));
        assert!(matches!(
            event_name("e".repeat(201).as_bytes()),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn socket_ids_are_digits_dot_digits() {
        assert!(socket_id(b"1234.5678").is_ok());
        for bad in ["", "1234", ".1", "1.", "1.2.3", "a.1", "1.b", " 1.2"] {
            assert_eq!(
                socket_id(bad.as_bytes()),
                Err(NameError::BadSocketId),
                "{bad}"
            );
        }
    }
}
