//! The Pusher protocol's cryptography, byte-identical with the official SDKs
//! (verified against vectors produced by the Node SDK, `tests/fixtures/pusher-vectors.json`).
//!
//! - HTTP API requests: HMAC-SHA256 over `METHOD\npath\nsorted query` with
//!   `auth_key`, `auth_timestamp`, `auth_version=1.0` and `body_md5` (only
//!   for a non-empty body); keys lower-cased and sorted, `auth_signature` last.
//! - Private channels: `socket_id:channel`; presence: `socket_id:channel:channel_data`;
//!   user authentication (`pusher:signin`): `socket_id::user::user_data`.
//! - `private-encrypted-` channels: shared secret = base64(sha256(channel ‖ master key)).
//! - Webhooks: HMAC-SHA256 of the body with the app secret, compared in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::encoding::{base64, base64_decode, hex};
use crate::validate;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// The socket id is not `digits.digits`.
    SocketId,
    Channel(validate::NameError),
    /// Presence data must carry a `user_id`, user data an `id`.
    MissingUserId(&'static str),
    /// `private-encrypted-` channels need the master key.
    NoMasterKey,
    /// The master key must be 32 bytes of base64.
    BadMasterKey,
    /// A channel of the wrong kind for the operation.
    WrongChannelKind(&'static str),
    Method,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SocketId => f.write_str("socket id must look like \"1234.5678\" (digits.digits)"),
            Self::Channel(e) => write!(f, "channel name {e}"),
            Self::MissingUserId(key) => write!(f, "user data must contain a non-empty \"{key}\""),
            Self::NoMasterKey => f.write_str(
                "private-encrypted- channels need the encryption master key (PUSHER_ENCRYPTION_MASTER_KEY_BASE64)",
            ),
            Self::BadMasterKey => f.write_str("the encryption master key must be 32 bytes, base64 encoded"),
            Self::WrongChannelKind(why) => f.write_str(why),
            Self::Method => f.write_str("method must be GET, POST, PUT or DELETE"),
        }
    }
}

impl std::error::Error for SignError {}

/// An app's credentials.
#[derive(Clone)]
pub struct Signer {
    key: String,
    secret: String,
    master_key: Option<[u8; 32]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("secret", &"***")
            .finish()
    }
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// MD5 of a request body, hex (Pusher's `body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

/// Appends `s` as a JSON string the way `JSON.stringify` does (what the Pusher
/// SDKs sign for presence and user data): `"`, `\` and control characters
/// escaped; `/` and non-ASCII characters kept as they are.
pub fn write_json_string_unescaped(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Signer {
    /// `master_key_base64`: the optional `encryption_master_key_base64` (32 bytes).
    pub fn new(
        key: &str,
        secret: &str,
        master_key_base64: Option<&str>,
    ) -> Result<Self, SignError> {
        let master_key = match master_key_base64 {
            None => None,
            Some(b64) => {
                let bytes = base64_decode(b64).ok_or(SignError::BadMasterKey)?;
                Some(bytes.try_into().map_err(|_| SignError::BadMasterKey)?)
            }
        };
        Ok(Self {
            key: key.to_string(),
            secret: secret.to_string(),
            master_key,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Every query parameter of a signed HTTP API request, in order, with
    /// `auth_signature` last. `query` keys are lower-cased.
    pub fn sign_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        timestamp: u64,
    ) -> Result<Vec<(String, String)>, SignError> {
        let method = method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
            return Err(SignError::Method);
        }
        let mut params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "auth_signature" | "auth_key" | "auth_timestamp" | "auth_version" | "body_md5"
                )
            })
            .collect();
        params.push(("auth_key".into(), self.key.clone()));
        params.push(("auth_timestamp".into(), timestamp.to_string()));
        params.push(("auth_version".into(), "1.0".into()));
        if !body.is_empty() {
            params.push(("body_md5".into(), body_md5(body)));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let query_string = join_query(&params);
        let to_sign = format!("{method}\n{path}\n{query_string}");
        params.push((
            "auth_signature".into(),
            hmac_hex(&self.secret, to_sign.as_bytes()),
        ));
        Ok(params)
    }

    /// `key:signature` for a private or encrypted channel.
    pub fn channel_auth(
        &self,
        socket_id: &str,
        channel: &str,
        channel_data: Option<&str>,
    ) -> Result<String, SignError> {
        validate::socket_id(socket_id.as_bytes()).map_err(|_| SignError::SocketId)?;
        validate::channel_name(channel.as_bytes()).map_err(SignError::Channel)?;
        let message = match channel_data {
            Some(data) => format!("{socket_id}:{channel}:{data}"),
            None => format!("{socket_id}:{channel}"),
        };
        Ok(format!(
            "{}:{}",
            self.key,
            hmac_hex(&self.secret, message.as_bytes())
        ))
    }

    /// The auth endpoint's JSON response for a private, encrypted or presence
    /// channel. `channel_data` (presence) must be the exact JSON string to sign.
    pub fn authorize_channel(
        &self,
        socket_id: &str,
        channel: &str,
        channel_data: Option<&str>,
    ) -> Result<String, SignError> {
        let is_presence = channel.starts_with("presence-");
        if is_presence != channel_data.is_some() {
            return Err(SignError::WrongChannelKind(if is_presence {
                "presence- channels need presence data (user_id and user_info)"
            } else {
                "presence data is only for presence- channels"
            }));
        }
        let auth = self.channel_auth(socket_id, channel, channel_data)?;
        let mut out = String::from("{\"auth\":");
        write_json_string_unescaped(&mut out, &auth);
        if let Some(data) = channel_data {
            out.push_str(",\"channel_data\":");
            write_json_string_unescaped(&mut out, data);
        }
        if channel.starts_with("private-encrypted-") {
            out.push_str(",\"shared_secret\":");
            write_json_string_unescaped(&mut out, &self.shared_secret(channel)?);
        }
        out.push('}');
        Ok(out)
    }

    /// `{"auth":..,"user_data":..}` for `pusher:signin`; `user_data` is the exact JSON to sign.
    pub fn authenticate_user(&self, socket_id: &str, user_data: &str) -> Result<String, SignError> {
        validate::socket_id(socket_id.as_bytes()).map_err(|_| SignError::SocketId)?;
        let message = format!("{socket_id}::user::{user_data}");
        let auth = format!(
            "{}:{}",
            self.key,
            hmac_hex(&self.secret, message.as_bytes())
        );
        let mut out = String::from("{\"auth\":");
        write_json_string_unescaped(&mut out, &auth);
        out.push_str(",\"user_data\":");
        write_json_string_unescaped(&mut out, user_data);
        out.push('}');
        Ok(out)
    }

    /// base64(sha256(channel ‖ master key)) for a `private-encrypted-` channel.
    pub fn shared_secret(&self, channel: &str) -> Result<String, SignError> {
        if !channel.starts_with("private-encrypted-") {
            return Err(SignError::WrongChannelKind(
                "shared secrets exist only for private-encrypted- channels",
            ));
        }
        let master = self.master_key.ok_or(SignError::NoMasterKey)?;
        let mut h = Sha256::new();
        h.update(channel.as_bytes());
        h.update(master);
        Ok(base64(&h.finalize()))
    }

    /// True when `signature` is the HMAC of `body` and `key` is this app's key.
    /// The comparison takes the same time wherever the strings differ.
    pub fn verify_webhook(&self, key: &str, signature: &str, body: &[u8]) -> bool {
        let expected = hmac_hex(&self.secret, body);
        let key_ok = constant_time_eq(key.as_bytes(), self.key.as_bytes());
        let sig_ok = constant_time_eq(
            signature.to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        );
        key_ok & sig_ok
    }
}

/// `k=v&k=v` without escaping: what the Pusher protocol signs.
pub fn join_query(params: &[(String, String)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/pusher-vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/fixtures/pusher-vectors.json");
        serde_json::from_str(&text).unwrap()
    }

    fn s(v: &Value) -> &str {
        v.as_str().unwrap()
    }

    /// JSON.stringify of a vector's object (keys in document order).
    fn stringify(v: &Value) -> String {
        match v {
            Value::Object(map) => {
                let mut out = String::from("{");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string_unescaped(&mut out, k);
                    out.push(':');
                    out.push_str(&stringify(v));
                }
                out.push('}');
                out
            }
            Value::String(s) => {
                let mut out = String::new();
                write_json_string_unescaped(&mut out, s);
                out
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn request_signatures_match_the_official_sdk() {
        let v = vectors();
        let cases = v["request_signatures"].as_array().unwrap();
        assert!(!cases.is_empty());
        for c in cases {
            let signer = Signer::new(s(&c["key"]), s(&c["secret"]), None).unwrap();
            let query: Vec<(String, String)> = c["query_params"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), s(v).to_string()))
                .collect();
            let params = signer
                .sign_request(
                    s(&c["method"]),
                    s(&c["path"]),
                    &query,
                    s(&c["body"]).as_bytes(),
                    c["auth_timestamp"].as_u64().unwrap(),
                )
                .unwrap();
            assert_eq!(
                join_query(&params),
                s(&c["expected_query"]),
                "{}",
                c["path"]
            );
        }
    }

    #[test]
    fn channel_presence_user_and_encrypted_auth_match_the_official_sdk() {
        let v = vectors();
        for c in v["channel_auth"].as_array().unwrap() {
            let signer = Signer::new(s(&c["key"]), s(&c["secret"]), None).unwrap();
            let body: Value = serde_json::from_str(
                &signer
                    .authorize_channel(s(&c["socket_id"]), s(&c["channel"]), None)
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(body, c["expected"]);
        }
        for c in v["presence_auth"].as_array().unwrap() {
            let signer = Signer::new(s(&c["key"]), s(&c["secret"]), None).unwrap();
            let data = stringify(&c["presence_data"]);
            assert_eq!(data, s(&c["expected"]["channel_data"]));
            let body: Value = serde_json::from_str(
                &signer
                    .authorize_channel(s(&c["socket_id"]), s(&c["channel"]), Some(&data))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(body, c["expected"]);
        }
        for c in v["user_auth"].as_array().unwrap() {
            let signer = Signer::new(s(&c["key"]), s(&c["secret"]), None).unwrap();
            let data = stringify(&c["user_data"]);
            let body: Value =
                serde_json::from_str(&signer.authenticate_user(s(&c["socket_id"]), &data).unwrap())
                    .unwrap();
            assert_eq!(body, c["expected"]);
        }
        for c in v["encrypted_shared_secret"].as_array().unwrap() {
            let signer = Signer::new(
                s(&c["key"]),
                s(&c["secret"]),
                Some(s(&c["encryption_master_key_base64"])),
            )
            .unwrap();
            let body: Value = serde_json::from_str(
                &signer
                    .authorize_channel(s(&c["socket_id"]), s(&c["channel"]), None)
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(body, c["expected"]);
        }
    }

    #[test]
    fn webhooks_are_verified_and_tampering_is_detected() {
        let v = vectors();
        let mut valid = 0;
        for c in v["webhooks"].as_array().unwrap() {
            let signer = Signer::new(s(&c["key"]), s(&c["secret"]), None).unwrap();
            let ok = signer.verify_webhook(
                s(&c["x_pusher_key"]),
                s(&c["x_pusher_signature"]),
                s(&c["body"]).as_bytes(),
            );
            assert_eq!(ok, c["valid"].as_bool().unwrap(), "{}", c["body"]);
            valid += ok as usize;
        }
        assert!(valid > 0);
        let signer = Signer::new("k", "secret", None).unwrap();
        let sig = hmac_hex("secret", b"body");
        assert!(signer.verify_webhook("k", &sig, b"body"));
        assert!(!signer.verify_webhook("other", &sig, b"body"));
        assert!(!signer.verify_webhook("k", &sig[..10], b"body"));
    }

    #[test]
    fn refuses_bad_socket_ids_channels_and_master_keys() {
        let signer = Signer::new("k", "s", None).unwrap();
        assert_eq!(
            signer.authorize_channel("1234", "private-a", None),
            Err(SignError::SocketId)
        );
        assert!(matches!(
            signer.authorize_channel("1.2", "private a", None),
            Err(SignError::Channel(_))
        ));
        assert!(matches!(
            signer.authorize_channel("1.2", "presence-a", None),
            Err(SignError::WrongChannelKind(_))
        ));
        assert_eq!(
            signer.authorize_channel("1.2", "private-encrypted-x", None),
            Err(SignError::NoMasterKey)
        );
        assert_eq!(
            Signer::new("k", "s", Some("short")).unwrap_err(),
            SignError::BadMasterKey
        );
        assert_eq!(
            signer.sign_request("PATCH", "/", &[], b"", 1).unwrap_err(),
            SignError::Method
        );
        assert!(!format!("{signer:?}").contains("\"s\""));
    }
}
