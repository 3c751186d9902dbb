//! Tokens that let a browser open an SSE stream on protected channels.
//!
//! ```text
//! token  := "v1." expires "." hex(HMAC-SHA256(secret, signed))
//! signed := "scada-sse-v1\n" expires "\n" protected
//! protected := the requested channels starting with `private-` or
//!              `presence-`, sorted, unique, joined with ","
//! ```
//! The Laravel package issues tokens after its own channel authorization; the
//! sidecar verifies them. Public channels in a request do not enter the
//! signature, so one token serves any mix of public channels.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encoding::hex;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
const CONTEXT: &str = "scada-sse-v1";

/// Why a token does not open the requested channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not `v1.{expires}.{64 hex digits}`.
    Malformed,
    /// Its expiry is in the past.
    Expired,
    /// Signed for other channels, or with another secret.
    WrongChannels,
    /// The secret is empty: nothing can be verified.
    NoSecret,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed token (expected v1.{expires}.{signature})",
            Self::Expired => "token expired",
            Self::WrongChannels => "token not valid for these channels",
            Self::NoSecret => "no SSE secret configured",
        })
    }
}

impl std::error::Error for TokenError {}

/// True for the channels a token must cover.
pub fn is_protected(channel: &str) -> bool {
    channel.starts_with("private-") || channel.starts_with("presence-")
}

/// The protected channels of `channels`, sorted, unique, comma-joined.
pub fn protected_list<'a>(channels: impl IntoIterator<Item = &'a str>) -> String {
    let mut list: Vec<&str> = channels.into_iter().filter(|c| is_protected(c)).collect();
    list.sort_unstable();
    list.dedup();
    list.join(",")
}

/// The string the signature covers.
pub fn signed_string<'a>(expires: u64, channels: impl IntoIterator<Item = &'a str>) -> String {
    format!("{CONTEXT}\n{expires}\n{}", protected_list(channels))
}

fn mac(secret: &str, expires: u64, channels: &[&str]) -> Result<HmacSha256, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| TokenError::NoSecret)?;
    mac.update(signed_string(expires, channels.iter().copied()).as_bytes());
    Ok(mac)
}

/// A token for `channels` valid until `expires` (Unix seconds).
pub fn issue(secret: &str, expires: u64, channels: &[&str]) -> Result<String, TokenError> {
    let mac = mac(secret, expires, channels)?;
    Ok(format!(
        "{VERSION}.{expires}.{}",
        hex(&mac.finalize().into_bytes())
    ))
}

/// Checks `token` for `channels` at `now` (Unix seconds) and returns its
/// expiry; the signature is compared in constant time.
pub fn verify(secret: &str, token: &str, channels: &[&str], now: u64) -> Result<u64, TokenError> {
    let mut parts = token.splitn(3, '.');
    let (Some(VERSION), Some(expires), Some(signature)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let expires: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let signature = hex_decode(signature).ok_or(TokenError::Malformed)?;
    if signature.len() != 32 {
        return Err(TokenError::Malformed);
    }
    let mac = mac(secret, expires, channels)?;
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::WrongChannels)?;
    // Checked after the signature: an expired token is reported as such only
    // when it is genuine.
    if expires < now {
        return Err(TokenError::Expired);
    }
    Ok(expires)
}

/// Lowercase or uppercase hex; `None` for anything else.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/sse-token-vectors.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn every_vector_is_issued_and_verified() {
        let v = vectors();
        let list = v["vectors"].as_array().unwrap();
        assert!(list.len() >= 4);
        for case in list {
            let secret = case["secret"].as_str().unwrap();
            let expires = case["expires"].as_u64().unwrap();
            let channels: Vec<&str> = case["channels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let token = case["token"].as_str().unwrap();
            assert_eq!(
                signed_string(expires, channels.iter().copied()),
                case["signed_string"].as_str().unwrap()
            );
            assert_eq!(issue(secret, expires, &channels).unwrap(), token);
            assert_eq!(verify(secret, token, &channels, expires), Ok(expires));
            assert_eq!(
                verify(secret, token, &channels, expires + 1),
                Err(TokenError::Expired)
            );
            assert_eq!(
                verify("other", token, &channels, expires),
                Err(TokenError::WrongChannels)
            );
            let mut more = channels.clone();
            more.push("private-extra");
            assert_eq!(
                verify(secret, token, &more, expires),
                Err(TokenError::WrongChannels)
            );
            // Public channels are not signed: adding one changes nothing.
            more.pop();
            more.push("public-extra");
            assert_eq!(verify(secret, token, &more, expires), Ok(expires));
            assert_eq!(
                verify(
                    secret,
                    &token.to_uppercase().replacen("V1", "v1", 1),
                    &channels,
                    expires
                ),
                Ok(expires)
            );
        }
    }

    #[test]
    fn malformed_tokens_and_a_missing_secret_are_refused() {
        let ch = ["private-a"];
        let good = issue("s", 100, &ch).unwrap();
        for bad in [
            "",
            "v1",
            "v1.100",
            "v2.100.00",
            "v1..ab",
            "v1.-1.ab",
            "v1.100.zz",
            "v1.100.abc",
            "v1.100.abcd",
            &good.replacen("v1.100.", "v1.+100.", 1),
            "v1.99999999999999999999999.ab",
        ] {
            assert_eq!(
                verify("s", bad, &ch, 0),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
        // A tampered expiry no longer matches the signature.
        assert_eq!(
            verify("s", &good.replacen(".100.", ".200.", 1), &ch, 0),
            Err(TokenError::WrongChannels)
        );
        assert_eq!(verify("", &good, &ch, 0), Err(TokenError::NoSecret));
        assert_eq!(issue("", 1, &ch), Err(TokenError::NoSecret));
        assert_eq!(TokenError::NoSecret.to_string(), "no SSE secret configured");
    }
}
