//! `Scada\Broadcasting\PusherSigner`: the Pusher protocol's signatures for
//! PHP (channel authorization endpoints, webhooks, HTTP API requests), from
//! `scada_core::pusher`, identical with the official SDKs.

use std::time::{SystemTime, UNIX_EPOCH};

use ext_php_rs::boxed::ZBox;
use ext_php_rs::flags::ClassFlags;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use scada_core::pusher::{SignError, Signer};

use crate::declared::{given, ArrayArg, Declared, IntArg, StrArg};
use crate::encode::{try_for_each, Encoder, Key};
use crate::errors::{invalid, runtime, type_error};

const CLASS: &str = "PusherSigner";

fn arg(method: &str, n: u8, name: &str) -> String {
    format!("{CLASS}::{method}(): Argument #{n} (${name})")
}

/// Bytes of a string argument (binary safe).
fn bytes<'a>(method: &str, n: u8, name: &str, zv: &'a Zval) -> PhpResult<&'a [u8]> {
    zv.dereference()
        .zend_str()
        .map(|s| s.as_bytes())
        .ok_or_else(|| type_error(format!("{} must be of type string", arg(method, n, name))))
}

fn text<'a>(method: &str, n: u8, name: &str, zv: &'a Zval) -> PhpResult<&'a str> {
    std::str::from_utf8(bytes(method, n, name, zv)?)
        .map_err(|_| invalid(format!("{} is not valid UTF-8", arg(method, n, name))))
}

fn sign_error(prefix: String, e: SignError) -> PhpException {
    invalid(format!("{prefix}: {e}"))
}

/// JSON of presence or user data, as the SDKs sign it; `id_key` must be present.
fn user_json(
    method: &str,
    n: u8,
    name: &str,
    data: &ZendHashTable,
    id_key: &'static str,
) -> PhpResult<String> {
    let id_ok = data
        .get(id_key)
        .map(Zval::dereference)
        .is_some_and(|v| v.long().is_some() || v.str().is_some_and(|s| !s.is_empty()));
    if !id_ok {
        return Err(invalid(format!(
            "{} must contain a non-empty \"{id_key}\" (string or int)",
            arg(method, n, name)
        )));
    }
    let encoder = Encoder {
        max_depth: 32,
        unescaped: true,
    };
    let mut out = Vec::new();
    encoder.array(&mut out, data, 1, false).map_err(|e| {
        invalid(format!(
            "{}: {} {}",
            arg(method, n, name),
            e.location(name),
            e.problem()
        ))
    })?;
    String::from_utf8(out).map_err(|e| runtime(e.to_string()))
}

#[php_class]
#[php(name = "Scada\\Broadcasting\\PusherSigner")]
#[php(flags = ClassFlags::Final)]
pub struct PusherSigner {
    signer: Signer,
}

#[php_impl]
impl PusherSigner {
    /// `$encryptionMasterKeyBase64`: 32 bytes, base64, for `private-encrypted-` channels.
    #[php(optional = "encryption_master_key_base64")]
    pub fn __construct(
        app_key: StrArg,
        app_secret: StrArg,
        encryption_master_key_base64: Option<StrArg>,
    ) -> PhpResult<Self> {
        let key = text("__construct", 1, "appKey", app_key.zval())?;
        let secret = text("__construct", 2, "appSecret", app_secret.zval())?;
        if key.is_empty() {
            return Err(invalid(format!(
                "{} must not be empty",
                arg("__construct", 1, "appKey")
            )));
        }
        if secret.is_empty() {
            return Err(invalid(format!(
                "{} must not be empty",
                arg("__construct", 2, "appSecret")
            )));
        }
        let master = match given(encryption_master_key_base64) {
            None => None,
            Some(z) => Some(text("__construct", 3, "encryptionMasterKeyBase64", z)?),
        };
        // The master key is a secret: the message names the argument, never its value.
        let signer = Signer::new(key, secret, master)
            .map_err(|e| sign_error(arg("__construct", 3, "encryptionMasterKeyBase64"), e))?;
        Ok(Self { signer })
    }

    /// Every query parameter to send with an HTTP API request, `auth_signature` last.
    #[php(optional = "query")]
    pub fn sign_request(
        &self,
        method: StrArg,
        path: StrArg,
        query: Option<&ZendHashTable>,
        body: Option<StrArg>,
        timestamp: Option<IntArg>,
    ) -> PhpResult<ZBox<ZendHashTable>> {
        let m = "signRequest";
        let method_s = text(m, 1, "method", method.zval())?;
        let path_s = text(m, 2, "path", path.zval())?;
        if !path_s.starts_with('/') {
            return Err(invalid(format!("{} must start with /", arg(m, 2, "path"))));
        }
        let mut params = Vec::new();
        if let Some(q) = query {
            try_for_each(q, |key, v| {
                let k = match key {
                    Key::Index(i) => i.to_string(),
                    Key::Str(b) => std::str::from_utf8(b)
                        .map_err(|_| {
                            invalid(format!(
                                "{}: key {} is not valid UTF-8",
                                arg(m, 3, "query"),
                                key.quoted()
                            ))
                        })?
                        .to_string(),
                };
                let v = v.dereference();
                let value = if let Some(s) = v.str() {
                    s.to_string()
                } else if let Some(i) = v.long() {
                    i.to_string()
                } else if let Some(b) = v.bool() {
                    (if b { "1" } else { "0" }).to_string()
                } else {
                    return Err(invalid(format!(
                        "{}: value of {} must be a string or int",
                        arg(m, 3, "query"),
                        key.quoted()
                    )));
                };
                params.push((k, value));
                Ok(())
            })?;
        }
        let body_bytes = match given(body) {
            Some(b) => bytes(m, 4, "body", b)?,
            None => b"",
        };
        let ts = match given(timestamp) {
            None => None,
            Some(z) => Some(z.long().filter(|t| *t >= 0).ok_or_else(|| {
                invalid(format!(
                    "{} must be a non-negative int or null",
                    arg(m, 5, "timestamp")
                ))
            })? as u64),
        };
        let ts = ts.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let signed = self
            .signer
            .sign_request(method_s, path_s, &params, body_bytes, ts)
            .map_err(|e| sign_error(arg(m, 1, "method"), e))?;
        let mut ht = ZendHashTable::new();
        for (k, v) in signed {
            ht.insert(k.as_str(), v)
                .map_err(|e| runtime(e.to_string()))?;
        }
        Ok(ht)
    }

    /// The JSON body a channel authorization endpoint returns: `{"auth"}` for
    /// private channels, plus `channel_data` (presence) or `shared_secret`
    /// (`private-encrypted-`).
    #[php(optional = "presence_data")]
    pub fn authorize_channel(
        &self,
        socket_id: StrArg,
        channel: StrArg,
        presence_data: Option<ArrayArg>,
    ) -> PhpResult<String> {
        let m = "authorizeChannel";
        let socket = text(m, 1, "socketId", socket_id.zval())?;
        let channel = text(m, 2, "channel", channel.zval())?;
        let channel_data = match given(presence_data) {
            None => None,
            Some(z) => {
                let ht = z.array().ok_or_else(|| {
                    type_error(format!(
                        "{} must be of type ?array",
                        arg(m, 3, "presenceData")
                    ))
                })?;
                Some(user_json(m, 3, "presenceData", ht, "user_id")?)
            }
        };
        self.signer
            .authorize_channel(socket, channel, channel_data.as_deref())
            .map_err(|e| {
                let which = match e {
                    SignError::SocketId => arg(m, 1, "socketId"),
                    SignError::WrongChannelKind(_) => arg(m, 3, "presenceData"),
                    _ => arg(m, 2, "channel"),
                };
                sign_error(which, e)
            })
    }

    /// The JSON body for user authentication (`pusher:signin`); `$userData` needs an `id`.
    pub fn authenticate_user(&self, socket_id: StrArg, user_data: ArrayArg) -> PhpResult<String> {
        let m = "authenticateUser";
        let socket = text(m, 1, "socketId", socket_id.zval())?;
        let ht = user_data.zval().array().ok_or_else(|| {
            type_error(format!("{} must be of type array", arg(m, 2, "userData")))
        })?;
        let data = user_json(m, 2, "userData", ht, "id")?;
        self.signer
            .authenticate_user(socket, &data)
            .map_err(|e| sign_error(arg(m, 1, "socketId"), e))
    }

    /// True when a webhook's `X-Pusher-Key` and `X-Pusher-Signature` match its body.
    pub fn verify_webhook(&self, key: StrArg, signature: StrArg, body: StrArg) -> PhpResult<bool> {
        let m = "verifyWebhook";
        Ok(self.signer.verify_webhook(
            text(m, 1, "key", key.zval())?,
            text(m, 2, "signature", signature.zval())?,
            bytes(m, 3, "body", body.zval())?,
        ))
    }
}
