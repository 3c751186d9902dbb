//! PHP values → JSON, in one walk, straight into the output buffer.
//!
//! The bytes are identical to `json_encode($value)` with default flags (see
//! `scada_core::json`), so subscribers see exactly what Laravel would have
//! published. Hash tables are read directly (as PHP's own encoder does):
//! ext-php-rs's safe iterator makes three FFI calls and an allocation per
//! element, which would cost more than the whole hand-off budget.
//!
//! Errors carry the path to the offending value (`$data['readings'][3]`); the
//! path is built while the error unwinds, so a successful walk pays nothing.
//!
//! User code runs in the middle of a walk (`jsonSerialize()`, destructors) and
//! may change or free what is being walked: every array is held by a
//! [`HeldArray`] while it is read, so writes separate (copy-on-write) and the
//! walk sees each array as it was when it reached it. Nothing borrowed from a
//! PHP value is used after user code ran unless its array is held.

use std::fmt::Write as _;
use std::ptr::addr_of;

use ext_php_rs::ffi::{self, zend_array, zend_string, zval};
use ext_php_rs::types::{ZendCallable, Zval};
use scada_core::json::{self, NonFinite};

use crate::held::HeldArray;

const IS_UNDEF: u8 = ffi::IS_UNDEF as u8;
const IS_NULL: u8 = ffi::IS_NULL as u8;
const IS_FALSE: u8 = ffi::IS_FALSE as u8;
const IS_TRUE: u8 = ffi::IS_TRUE as u8;
const IS_LONG: u8 = ffi::IS_LONG as u8;
const IS_DOUBLE: u8 = ffi::IS_DOUBLE as u8;
const IS_STRING: u8 = ffi::IS_STRING as u8;
const IS_ARRAY: u8 = ffi::IS_ARRAY as u8;
const IS_OBJECT: u8 = ffi::IS_OBJECT as u8;
const IS_RESOURCE: u8 = ffi::IS_RESOURCE as u8;
const IS_REFERENCE: u8 = ffi::IS_REFERENCE as u8;
const IS_INDIRECT: u8 = ffi::IS_INDIRECT as u8;
/// `HASH_FLAG_PACKED` from zend_hash.h.
const HASH_FLAG_PACKED: u32 = 1 << 2;

/// One step of the path to a bad value.
#[derive(Debug, Clone)]
pub enum PathSeg {
    Index(i64),
    Key(String),
}

#[derive(Debug, Clone)]
pub enum ErrorKind {
    InvalidUtf8 {
        at: usize,
    },
    InvalidUtf8Key,
    NonFinite(NonFinite),
    Resource,
    Closure,
    TooDeep {
        max: usize,
    },
    /// `json_encode()` refused an object; the message is PHP's.
    Object {
        class: String,
        message: String,
    },
    /// A PHP exception was thrown while serializing an object (jsonSerialize).
    PendingException,
    Unsupported(u8),
}

#[derive(Debug, Clone)]
pub struct EncodeError {
    pub kind: ErrorKind,
    /// Innermost first, while unwinding; reversed when printed.
    path: Vec<PathSeg>,
}

impl EncodeError {
    fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            path: Vec::new(),
        }
    }

    fn at(mut self, seg: PathSeg) -> Self {
        self.path.push(seg);
        self
    }

    /// `$data['a'][3]`: where in the argument the problem is.
    pub fn location(&self, arg: &str) -> String {
        let mut s = format!("${arg}");
        // Very deep paths (runaway recursion) are shortened in the middle.
        const SHOWN: usize = 8;
        let n = self.path.len();
        for (i, seg) in self.path.iter().rev().enumerate() {
            if n > 2 * SHOWN && i >= SHOWN && i < n - SHOWN {
                if i == SHOWN {
                    let _ = write!(s, "[…{} more…]", n - 2 * SHOWN);
                }
                continue;
            }
            match seg {
                PathSeg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
                PathSeg::Key(k) => {
                    let _ = write!(s, "['{}']", escape_key(k));
                }
            }
        }
        s
    }

    /// What is wrong, phrased to follow the location.
    pub fn problem(&self) -> String {
        match &self.kind {
            ErrorKind::InvalidUtf8 { at } => {
                format!("is not valid UTF-8 (bad byte at offset {at}); JSON strings must be UTF-8")
            }
            ErrorKind::InvalidUtf8Key => "has a key that is not valid UTF-8".into(),
            ErrorKind::NonFinite(v) => format!("is {v}; JSON cannot represent NAN or INF"),
            ErrorKind::Resource => "is a resource, which cannot be broadcast".into(),
            ErrorKind::Closure => "is a Closure, which cannot be broadcast".into(),
            ErrorKind::TooDeep { max } => {
                format!("is nested deeper than {max} levels (option max_depth)")
            }
            ErrorKind::Object { class, message } => {
                format!("is an object of class {class} that json_encode() refused: {message}")
            }
            ErrorKind::PendingException => "threw an exception while being serialized".into(),
            ErrorKind::Unsupported(t) => format!("has an unsupported PHP type ({t})"),
        }
    }
}

type Result<T> = std::result::Result<T, EncodeError>;

#[inline]
fn type_of(zv: &zval) -> u8 {
    // SAFETY: every zval has an initialised type_info.
    unsafe { zv.u1.v.type_ }
}

/// Bytes of a zend_string.
///
/// # Safety
/// `s` must point to a live zend_string.
#[inline]
unsafe fn zstr<'a>(s: *const zend_string) -> &'a [u8] {
    // SAFETY: guaranteed by the caller; `val` is followed by `len` bytes.
    unsafe { std::slice::from_raw_parts((*s).val.as_ptr().cast::<u8>(), (*s).len) }
}

/// Follows references and indirections to the value itself.
#[inline]
fn deref(mut zv: &zval) -> &zval {
    loop {
        match type_of(zv) {
            // SAFETY: the type tag says which union member is live.
            IS_REFERENCE => zv = unsafe { &(*zv.value.ref_).val },
            IS_INDIRECT => zv = unsafe { &*zv.value.zv },
            _ => return zv,
        }
    }
}

/// Key of a hash table entry. String keys are raw bytes: PHP allows any.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    Index(i64),
    Str(&'a [u8]),
}

impl Key<'_> {
    fn seg(self) -> PathSeg {
        match self {
            Key::Index(i) => PathSeg::Index(i),
            Key::Str(s) => PathSeg::Key(String::from_utf8_lossy(s).into_owned()),
        }
    }

    /// As PHP would write it in an error message: `3` or `'name'`, with
    /// control characters escaped (a NUL cannot even travel in an exception).
    pub fn quoted(self) -> String {
        match self {
            Key::Index(i) => i.to_string(),
            Key::Str(s) => format!("'{}'", escape_key(&String::from_utf8_lossy(s))),
        }
    }
}

/// A key made printable: quotes, backslashes and control characters escaped.
pub fn escape_key(k: &str) -> String {
    let mut s = String::with_capacity(k.len());
    for c in k.chars() {
        match c {
            '\'' => s.push_str("\\'"),
            '\\' => s.push_str("\\\\"),
            '\0' => s.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

/// Visits a PHP array's entries in order without ext-php-rs's iterator, which
/// panics on keys that are not UTF-8 (PHP allows any bytes). The array is
/// held for the walk, so `f` may run user code.
pub fn try_for_each<E>(
    ht: &zend_array,
    mut f: impl FnMut(Key<'_>, &Zval) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    // SAFETY: `ht` is borrowed from a live PHP value, on the PHP thread.
    let held = unsafe { HeldArray::new(ht) };
    // SAFETY: held, so live and unchanged for the walk.
    unsafe { for_each(held.as_ptr(), &mut f) }
}

/// True when the keys are exactly 0..n-1 in order (a PHP "list").
pub fn is_list_array(ht: &zend_array) -> bool {
    // SAFETY: a live table; nothing runs user code while this reads it.
    unsafe { is_list(ht as *const zend_array) }
}

/// Visits live entries in order (skipping deleted slots).
///
/// The table is a pointer and its header is read field by field: user code
/// that `f` runs changes the header (the refcount) while we walk, so no
/// reference to the whole `zend_array` may live across the walk. The entries
/// themselves do not change (copy-on-write, see [`HeldArray`]).
///
/// # Safety
/// `ht` must be a live, initialised PHP hash table whose entries nobody
/// modifies during the walk (`'a`): held by a [`HeldArray`] when `f` can run
/// user code.
unsafe fn for_each<'a, E>(
    ht: *const zend_array,
    mut f: impl FnMut(Key<'a>, &'a zval) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    // SAFETY (all blocks): `ht` is live (guaranteed by the caller); the flags
    // select which entry pointer is live, and `nNumUsed` slots of it are
    // initialised.
    let used = unsafe { addr_of!((*ht).nNumUsed).read() } as usize;
    if used == 0 {
        return Ok(());
    }
    let packed = unsafe { addr_of!((*ht).u.flags).read() } & HASH_FLAG_PACKED != 0;
    #[cfg(php_packed_zvals)]
    if packed {
        let zvals = unsafe {
            std::slice::from_raw_parts(addr_of!((*ht).__bindgen_anon_1.arPacked).read(), used)
        };
        for (i, zv) in zvals.iter().enumerate() {
            if type_of(zv) != IS_UNDEF {
                f(Key::Index(i as i64), zv)?;
            }
        }
        return Ok(());
    }
    let buckets =
        unsafe { std::slice::from_raw_parts(addr_of!((*ht).__bindgen_anon_1.arData).read(), used) };
    for b in buckets {
        if type_of(&b.val) == IS_UNDEF {
            continue;
        }
        let key = if b.key.is_null() || packed {
            Key::Index(b.h as i64)
        } else {
            Key::Str(unsafe { zstr(b.key) })
        };
        f(key, &b.val)?;
    }
    Ok(())
}

/// `json_encode`'s rule: an array is a JSON list when its keys are 0..n-1 in order.
///
/// # Safety
/// As for [`for_each`].
unsafe fn is_list(ht: *const zend_array) -> bool {
    // SAFETY: reading header fields of a live table (guaranteed by the caller).
    let (elements, used, flags) = unsafe {
        (
            addr_of!((*ht).nNumOfElements).read(),
            addr_of!((*ht).nNumUsed).read(),
            addr_of!((*ht).u.flags).read(),
        )
    };
    if elements == 0 {
        return true;
    }
    let packed = flags & HASH_FLAG_PACKED != 0;
    if packed && used == elements {
        return true;
    }
    let mut expected = 0i64;
    // SAFETY: guaranteed by the caller.
    unsafe {
        for_each(ht, |k, _| match k {
            Key::Index(i) if i == expected => {
                expected += 1;
                Ok(())
            }
            _ => Err(EncodeError::new(ErrorKind::Unsupported(0))),
        })
    }
    .is_ok()
}

/// Encodes PHP values with a depth limit.
pub struct Encoder {
    pub max_depth: usize,
    /// Write strings as `JSON.stringify` does (no escaping of `/` or non-ASCII):
    /// what Pusher signs for presence and user data. Default: PHP's `json_encode`.
    pub unescaped: bool,
}

/// `JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE`.
const JSON_UNESCAPED: i64 = 64 | 256;

impl Encoder {
    pub fn new(max_depth: usize) -> Self {
        Self {
            max_depth,
            unescaped: false,
        }
    }

    fn string(&self, out: &mut Vec<u8>, s: &[u8]) -> std::result::Result<(), json::InvalidUtf8> {
        if self.unescaped {
            json::write_string_unescaped(out, s)
        } else {
            json::write_string(out, s)
        }
    }

    /// Any PHP value.
    pub fn value(&self, out: &mut Vec<u8>, zv: &Zval, depth: usize) -> Result<()> {
        let zv = deref(zv);
        match type_of(zv) {
            IS_NULL | IS_UNDEF => out.extend_from_slice(b"null"),
            IS_FALSE => out.extend_from_slice(b"false"),
            IS_TRUE => out.extend_from_slice(b"true"),
            // SAFETY (arms below): the type tag says which union member is live.
            IS_LONG => json::write_i64(out, unsafe { zv.value.lval }),
            IS_DOUBLE => json::write_f64(out, unsafe { zv.value.dval })
                .map_err(|e| EncodeError::new(ErrorKind::NonFinite(e)))?,
            IS_STRING => self
                .string(out, unsafe { zstr(zv.value.str_) })
                .map_err(|e| EncodeError::new(ErrorKind::InvalidUtf8 { at: e.at }))?,
            // The table is reached by its raw pointer, never through a
            // reference that would let the compiler assume it cannot change.
            IS_ARRAY => unsafe { self.walk_array(out, zv.value.arr, depth + 1, false)? },
            IS_OBJECT => self.object(out, zv)?,
            IS_RESOURCE => return Err(EncodeError::new(ErrorKind::Resource)),
            other => return Err(EncodeError::new(ErrorKind::Unsupported(other))),
        }
        Ok(())
    }

    /// A PHP array; `force_object` writes a list as `{"0":..}` (used for
    /// event payloads, which are always JSON objects).
    pub fn array(
        &self,
        out: &mut Vec<u8>,
        ht: &zend_array,
        depth: usize,
        force_object: bool,
    ) -> Result<()> {
        // SAFETY: a live table, borrowed from a PHP value.
        unsafe { self.walk_array(out, std::ptr::from_ref(ht).cast_mut(), depth, force_object) }
    }

    /// # Safety
    /// `ht` must point to a live PHP array, on the PHP thread.
    unsafe fn walk_array(
        &self,
        out: &mut Vec<u8>,
        ht: *mut zend_array,
        depth: usize,
        force_object: bool,
    ) -> Result<()> {
        if depth > self.max_depth {
            return Err(EncodeError::new(ErrorKind::TooDeep {
                max: self.max_depth,
            }));
        }
        // SAFETY: `ht` comes from a live zval. Our reference keeps it alive and
        // unchanged while `value()` runs user code (objects' jsonSerialize).
        let held = unsafe { HeldArray::new(ht) };
        let ht = held.as_ptr();
        // SAFETY: held (above).
        let list = !force_object && unsafe { is_list(ht) };
        out.push(if list { b'[' } else { b'{' });
        let mut first = true;
        // SAFETY: as above.
        unsafe {
            for_each(ht, |key, v| {
                if !first {
                    out.push(b',');
                }
                first = false;
                if !list {
                    match key {
                        Key::Index(i) => {
                            out.push(b'"');
                            json::write_i64(out, i);
                            out.push(b'"');
                        }
                        Key::Str(s) => self.string(out, s).map_err(|_| {
                            EncodeError::new(ErrorKind::InvalidUtf8Key).at(key.seg())
                        })?,
                    }
                    out.push(b':');
                }
                self.value(out, v, depth).map_err(|e| e.at(key.seg()))
            })?;
        }
        out.push(if list { b']' } else { b'}' });
        // Releasing `held` may destroy the array (user code dropped its own
        // references meanwhile) and run destructors; callers check for a
        // pending exception once the whole value is encoded.
        drop(held);
        Ok(())
    }

    /// Objects are rare in telemetry but common in Laravel payloads (Carbon,
    /// JsonSerializable, enums): let PHP's json_encode handle them so the
    /// result is exactly what Laravel would publish. Closures are refused
    /// (json_encode would silently write `{}`).
    fn object(&self, out: &mut Vec<u8>, zv: &zval) -> Result<()> {
        // SAFETY: IS_OBJECT guarantees `obj` and its class entry are live.
        let class = unsafe {
            let ce = (*zv.value.obj).ce;
            String::from_utf8_lossy(zstr((*ce).name)).into_owned()
        };
        if class == "Closure" {
            return Err(EncodeError::new(ErrorKind::Closure));
        }
        let refused = |message: String| {
            EncodeError::new(ErrorKind::Object {
                class: class.clone(),
                message,
            })
        };
        let json_encode = ZendCallable::try_from_name("json_encode")
            .map_err(|_| refused("json_encode() is not available".into()))?;
        let flags: i64 = if self.unescaped { JSON_UNESCAPED } else { 0 };
        let result =
            match json_encode.try_call(vec![zv as &dyn ext_php_rs::convert::IntoZvalDyn, &flags]) {
                Ok(r) => r,
                Err(ext_php_rs::error::Error::ExceptionPending { .. }) => {
                    return Err(EncodeError::new(ErrorKind::PendingException))
                }
                Err(e) => return Err(refused(e.to_string())),
            };
        match result.zend_str() {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(())
            }
            None => {
                let message = ZendCallable::try_from_name("json_last_error_msg")
                    .ok()
                    .and_then(|f| f.try_call(vec![]).ok())
                    .and_then(|m| m.string())
                    .unwrap_or_else(|| "unknown error".into());
                Err(refused(message))
            }
        }
    }
}
