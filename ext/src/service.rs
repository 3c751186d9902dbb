//! `Scada\Broadcasting\ScadaBroadcastingService`: validate, encode, hand off.
//!
//! Each call validates its arguments, encodes one event frame into a reused
//! per-thread buffer and hands it to the process's transport (a mutex and a
//! memcpy). Nothing here waits for the sidecar.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ext_php_rs::boxed::ZBox;
use ext_php_rs::flags::ClassFlags;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use scada_core::aggregate::SeriesTable;
use scada_core::event::MAX_CHANNELS;
use scada_core::samples::{MAX_THROTTLE_MS, MIN_THROTTLE_MS};
use scada_core::{json, timefmt, validate, EventWriter, SamplesWriter};

use crate::declared::{given, ArrayArg, Declared, IntArg, StrArg};
use crate::encode::{is_list_array, try_for_each, EncodeError, Encoder, Key};
use crate::errors::{invalid, runtime, type_error};
use crate::fork;
use crate::options::ServiceOptions;
use crate::transport::stats::Stats;
use crate::transport::Transport;

const CLASS: &str = "ScadaBroadcastingService";
/// The seed's event name, kept so existing Echo listeners work.
pub const DATA_EVENT: &str = "scada.data.received";

thread_local! {
    /// Frame scratch buffer, reused across calls (no allocation per call).
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(16 * 1024));
}

/// Runs `f` with the scratch buffer (a fresh one if a call re-enters, e.g.
/// from a jsonSerialize() that broadcasts).
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::with_capacity(16 * 1024);
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn type_name(zv: &Zval) -> String {
    let zv = zv.dereference();
    if zv.is_null() {
        "null".into()
    } else if zv.is_bool() {
        "bool".into()
    } else if zv.is_long() {
        "int".into()
    } else if zv.is_double() {
        "float".into()
    } else if zv.is_string() {
        "string".into()
    } else if zv.is_array() {
        "array".into()
    } else if let Some(obj) = zv.object() {
        obj.get_class_name().unwrap_or_else(|_| "object".into())
    } else {
        "resource".into()
    }
}

/// Method and argument, for messages: `ScadaBroadcastingService::broadcast(): Argument #2 ($event)`.
struct Arg {
    method: &'static str,
    n: u8,
    name: &'static str,
}

impl Arg {
    const fn new(method: &'static str, n: u8, name: &'static str) -> Self {
        Self { method, n, name }
    }

    fn prefix(&self) -> String {
        format!(
            "{CLASS}::{}(): Argument #{} (${})",
            self.method, self.n, self.name
        )
    }

    fn wrong_type(&self, want: &str, got: &Zval) -> PhpException {
        type_error(format!(
            "{} must be of type {want}, {} given",
            self.prefix(),
            type_name(got)
        ))
    }

    fn name_error(&self, what: &str, e: validate::NameError) -> PhpException {
        invalid(format!("{} {what} {e}", self.prefix()))
    }

    /// Ends a call in which user code threw: that exception is pending and
    /// keeps propagating (ext-php-rs never throws over a pending one).
    fn user_code_threw(&self) -> PhpException {
        runtime(format!(
            "{} threw an exception while being serialized",
            self.prefix()
        ))
    }

    fn encode_error(&self, e: EncodeError) -> PhpException {
        if matches!(e.kind, crate::encode::ErrorKind::PendingException) {
            return self.user_code_threw();
        }
        let location = e.location(self.name);
        if location.len() == self.name.len() + 1 {
            invalid(format!("{} {}", self.prefix(), e.problem()))
        } else {
            invalid(format!("{}: {location} {}", self.prefix(), e.problem()))
        }
    }
}

/// Bytes of a string argument, or a TypeError naming it.
fn string_arg<'a>(arg: &Arg, zv: &'a Zval) -> PhpResult<&'a [u8]> {
    zv.dereference()
        .zend_str()
        .map(|s| s.as_bytes())
        .ok_or_else(|| arg.wrong_type("string", zv))
}

fn channel_arg<'a>(arg: &Arg, zv: &'a Zval) -> PhpResult<&'a [u8]> {
    let name = string_arg(arg, zv)?;
    validate::channel_name(name).map_err(|e| arg.name_error("is not a valid channel name:", e))?;
    Ok(name)
}

#[php_class]
#[php(name = "Scada\\Broadcasting\\ScadaBroadcastingService")]
#[php(flags = ClassFlags::Final)]
pub struct ScadaBroadcastingService {
    options: ServiceOptions,
    encoder: Encoder,
    transport: RefCell<Option<Arc<Transport>>>,
}

impl ScadaBroadcastingService {
    /// The transport of this process generation (re-resolved after a fork).
    fn transport(&self) -> PhpResult<Arc<Transport>> {
        let mut slot = self.transport.borrow_mut();
        if let Some(t) = slot.as_ref() {
            if t.generation() == fork::generation() {
                return Ok(t.clone());
            }
            // Inherited from the parent process: leak it, never drop it here.
            if let Some(old) = slot.take() {
                std::mem::forget(old);
            }
        }
        let t = Transport::get(&self.options.transport).map_err(|e| runtime(e.to_string()))?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// Encodes one event with `write_payload` and hands it off.
    fn send(
        &self,
        channels: &[&[u8]],
        event: &[u8],
        socket_id: Option<&[u8]>,
        payload_arg: &Arg,
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), PhpException>,
    ) -> PhpResult<bool> {
        let transport = self.transport()?;
        let overflow = self.options.overflow_for(channels.iter().copied());
        let result = with_scratch(|buf| -> PhpResult<bool> {
            let mut w = EventWriter::begin(buf, transport.unnumbered_id(), now_micros() as u64);
            for c in channels {
                w.channel(buf, c).map_err(|e| invalid(e.to_string()))?;
            }
            w.event(buf, event, socket_id)
                .map_err(|e| invalid(e.to_string()))?;
            // The payload may run user code (jsonSerialize, destructors): from
            // here on nothing borrowed from array arguments is used.
            let start = w.payload_start();
            write_payload(buf)?;
            if exception_pending() {
                // A destructor that ran when the encoder let go of an array
                // threw: the caller gets that exception, and nothing is sent.
                return Err(payload_arg.user_code_threw());
            }
            let size = buf.len() - start;
            if size > self.options.max_payload_bytes {
                return Err(invalid(format!(
                    "{} encodes to {size} bytes of JSON, over the {} byte limit (option max_payload_bytes)",
                    payload_arg.prefix(),
                    self.options.max_payload_bytes
                )));
            }
            w.finish(buf).map_err(|e| invalid(e.to_string()))?;
            transport
                .submit(buf, overflow)
                .map_err(|e| runtime(e.to_string()))
        });
        result
    }

    fn broadcast_data_impl(&self, data: &Zval, channel: Option<&Zval>) -> PhpResult<bool> {
        let arg = Arg::new("broadcastData", 2, "channel");
        let channel = match channel {
            Some(c) => channel_arg(&arg, c)?,
            None => b"scada-data",
        };
        let data_arg = Arg::new("broadcastData", 1, "data");
        self.send(&[channel], DATA_EVENT.as_bytes(), None, &data_arg, |out| {
            Self::data_payload(out, channel, |out| {
                self.encoder
                    .value(out, data, 0)
                    .map_err(|e| data_arg.encode_error(e))
            })
        })
    }

    fn broadcast_batch_data_impl(
        &self,
        data_array: &Zval,
        channel: Option<&Zval>,
    ) -> PhpResult<bool> {
        let arg = Arg::new("broadcastBatchData", 2, "channel");
        let channel = match channel {
            Some(c) => channel_arg(&arg, c)?,
            None => b"scada-batch",
        };
        let items_arg = Arg::new("broadcastBatchData", 1, "dataArray");
        let items = data_array
            .dereference()
            .array()
            .ok_or_else(|| items_arg.wrong_type("array", data_array))?;
        let table = aggregate_items(&items_arg, items)?;
        self.send(&[channel], DATA_EVENT.as_bytes(), None, &items_arg, |out| {
            Self::data_payload(out, channel, |out| {
                table.write_json(out, false).map_err(|_| {
                    invalid(format!("{} sums overflow to infinity", items_arg.prefix()))
                })
            })
        })
    }

    fn broadcast_impl(
        &self,
        channels: &Zval,
        event: &Zval,
        payload: Option<&Zval>,
        socket_id: Option<&Zval>,
    ) -> PhpResult<bool> {
        let ch_arg = Arg::new("broadcast", 1, "channels");
        let ev_arg = Arg::new("broadcast", 2, "event");
        let pl_arg = Arg::new("broadcast", 3, "payload");
        let sock_arg = Arg::new("broadcast", 4, "socketId");

        // Copied: elements of `$channels` may be references that user code
        // running during the payload's encoding reassigns (and frees).
        let mut names = ChannelNames::default();
        let chz = channels.dereference();
        if let Some(s) = chz.zend_str() {
            names.push(s.as_bytes());
        } else if let Some(list) = chz.array() {
            if list.len() > MAX_CHANNELS {
                return Err(invalid(format!(
                    "{} names {} channels; at most {MAX_CHANNELS} are allowed per event",
                    ch_arg.prefix(),
                    list.len()
                )));
            }
            try_for_each(list, |key, v| {
                let name = v.dereference().zend_str().ok_or_else(|| {
                    type_error(format!(
                        "{}: element {} must be of type string, {} given",
                        ch_arg.prefix(),
                        key.quoted(),
                        type_name(v)
                    ))
                })?;
                names.push(name.as_bytes());
                Ok::<_, PhpException>(())
            })?;
        } else {
            return Err(ch_arg.wrong_type("array|string", channels));
        }
        if names.is_empty() {
            return Err(invalid(format!(
                "{} must name at least one channel",
                ch_arg.prefix()
            )));
        }
        let names = names.as_slices();
        for (i, name) in names.iter().enumerate() {
            validate::channel_name(name).map_err(|e| {
                invalid(format!(
                    "{}: channel {i} is not a valid channel name: it {e}",
                    ch_arg.prefix()
                ))
            })?;
        }
        let event = string_arg(&ev_arg, event)?;
        validate::event_name(event)
            .map_err(|e| ev_arg.name_error("is not a valid event name: it", e))?;
        let socket = match socket_id.map(Zval::dereference) {
            None => None,
            Some(z) if z.is_null() => None,
            Some(z) => {
                let s = string_arg(&sock_arg, z)?;
                validate::socket_id(s)
                    .map_err(|e| sock_arg.name_error("is not a valid socket id: it", e))?;
                Some(s)
            }
        };
        let payload_ht = match payload.map(Zval::dereference) {
            None => None,
            Some(z) if z.is_null() => None,
            Some(z) => Some(z.array().ok_or_else(|| pl_arg.wrong_type("array", z))?),
        };
        self.send(&names, event, socket, &pl_arg, |out| match payload_ht {
            None => {
                out.extend_from_slice(b"{}");
                Ok(())
            }
            Some(ht) => self
                .encoder
                .array(out, ht, 1, true)
                .map_err(|e| pl_arg.encode_error(e)),
        })
    }

    fn broadcast_aggregated_data_impl(
        &self,
        data: &Zval,
        channel: Option<&Zval>,
        throttle_ms: Option<&Zval>,
    ) -> PhpResult<bool> {
        const M: &str = "broadcastAggregatedData";
        let channel = match channel {
            Some(c) => channel_arg(&Arg::new(M, 2, "channel"), c)?,
            None => b"scada-aggregated",
        };
        let t_arg = Arg::new(M, 3, "throttleMs");
        let throttle = match throttle_ms.map(Zval::dereference) {
            None => 100,
            Some(z) => {
                let ms = z.long().ok_or_else(|| t_arg.wrong_type("int", z))?;
                if !(MIN_THROTTLE_MS as i64..=MAX_THROTTLE_MS as i64).contains(&ms) {
                    return Err(invalid(format!(
                        "{} must be between {MIN_THROTTLE_MS} and {MAX_THROTTLE_MS} milliseconds, got {ms}",
                        t_arg.prefix()
                    )));
                }
                ms as u32
            }
        };
        let data_arg = Arg::new(M, 1, "data");
        let transport = self.transport()?;
        with_scratch(|buf| -> PhpResult<bool> {
            let mut w = SamplesWriter::begin(
                buf,
                transport.unnumbered_id(),
                now_micros() as u64,
                throttle,
                channel,
            )
            .map_err(|e| invalid(e.to_string()))?;
            let mut result = Ok(());
            let walk = for_each_sample(&data_arg, data, |series, v| {
                if series.len() > scada_core::samples::MAX_SERIES_LEN {
                    return Err(invalid(format!(
                        "{}: series name {:?}… is over 200 bytes",
                        data_arg.prefix(),
                        String::from_utf8_lossy(&series[..40])
                    )));
                }
                w.sample(buf, series, v)
                    .map_err(|e| invalid(format!("{}: {e}", data_arg.prefix())))
            });
            if let Err(e) = walk {
                result = Err(e);
            }
            match result {
                Ok(()) => {
                    w.finish(buf).map_err(|e| invalid(e.to_string()))?;
                    transport
                        .submit(buf, self.options.overflow_for([channel]))
                        .map_err(|e| runtime(e.to_string()))
                }
                Err(e) => {
                    w.abandon(buf);
                    Err(e)
                }
            }
        })
    }

    /// Counts a call refused with an exception.
    fn counted<T>(&self, result: PhpResult<T>) -> PhpResult<T> {
        if result.is_err() {
            if let Ok(t) = self.transport() {
                Stats::add(&t.stats().invalid, 1);
            }
        }
        result
    }

    /// `{"data":<data>,"timestamp":"...","channel":"..."}`: the seed's ScadaDataReceived payload.
    fn data_payload(
        out: &mut Vec<u8>,
        channel: &[u8],
        write_data: impl FnOnce(&mut Vec<u8>) -> Result<(), PhpException>,
    ) -> Result<(), PhpException> {
        out.extend_from_slice(b"{\"data\":");
        write_data(out)?;
        out.extend_from_slice(b",\"timestamp\":\"");
        out.extend_from_slice(&timefmt::iso8601_micros(now_micros()));
        out.extend_from_slice(b"\",\"channel\":");
        json::write_string(out, channel).map_err(|_| invalid("channel is not UTF-8".into()))?;
        out.push(b'}');
        Ok(())
    }
}

impl Drop for ScadaBroadcastingService {
    fn drop(&mut self) {
        // An object created before a fork and destroyed in the child must not
        // drop the parent's transport.
        if let Some(t) = self.transport.get_mut().take() {
            if t.generation() != fork::generation() {
                std::mem::forget(t);
            }
        }
    }
}

#[php_impl]
impl ScadaBroadcastingService {
    /// Options override php.ini (`scada_broadcast.*`) and the environment.
    #[php(optional = "options")]
    pub fn __construct(options: Option<&ZendHashTable>) -> PhpResult<Self> {
        let options = ServiceOptions::from_php(options).map_err(invalid)?;
        Ok(Self {
            encoder: Encoder::new(options.max_depth),
            options,
            transport: RefCell::new(None),
        })
    }

    /// Sends `scada.data.received` with `{"data", "timestamp", "channel"}` on `$channel`.
    #[php(optional = "channel")]
    pub fn broadcast_data(&self, data: &Zval, channel: Option<StrArg>) -> PhpResult<bool> {
        self.counted(self.broadcast_data_impl(data, given(channel)))
    }

    /// Aggregates samples per item `channel` (items without one go under
    /// `unknown`) into `{count, sum, min, max, average}` and sends one
    /// `scada.data.received` event whose `data` is that map.
    #[php(optional = "channel")]
    pub fn broadcast_batch_data(
        &self,
        data_array: ArrayArg,
        channel: Option<StrArg>,
    ) -> PhpResult<bool> {
        self.counted(self.broadcast_batch_data_impl(data_array.zval(), given(channel)))
    }

    /// Host-wide throttled aggregation: every process sending to `$channel`
    /// shares one window of `$throttleMs` in the sidecar, which sends the first
    /// sample at once and then one `scada.data.received` per window with
    /// `{count, sum, min, max, average, first, last}` per series.
    #[php(optional = "channel")]
    pub fn broadcast_aggregated_data(
        &self,
        data: ArrayArg,
        channel: Option<StrArg>,
        throttle_ms: Option<IntArg>,
    ) -> PhpResult<bool> {
        self.counted(self.broadcast_aggregated_data_impl(
            data.zval(),
            given(channel),
            given(throttle_ms),
        ))
    }

    /// Sends `$event` with `$payload` (always a JSON object) on one or more
    /// channels; `$socketId` excludes that connection, as in Laravel.
    #[php(optional = "payload")]
    pub fn broadcast(
        &self,
        channels: &Zval,
        event: StrArg,
        payload: Option<ArrayArg>,
        socket_id: Option<StrArg>,
    ) -> PhpResult<bool> {
        self.counted(self.broadcast_impl(channels, event.zval(), given(payload), given(socket_id)))
    }

    /// The JSON the extension sends for `$value` (byte-identical with
    /// `json_encode($value)`, or the same exception a broadcast would throw).
    /// For debugging payloads; it sends nothing.
    pub fn encode_json(value: &Zval) -> PhpResult<String> {
        let arg = Arg::new("encodeJson", 1, "value");
        let max_depth = ServiceOptions::from_php(None).map_or(64, |o| o.max_depth);
        let mut out = Vec::new();
        Encoder::new(max_depth)
            .value(&mut out, value, 0)
            .map_err(|e| arg.encode_error(e))?;
        String::from_utf8(out).map_err(|e| runtime(e.to_string()))
    }

    /// Hands everything pending to the sidecar (or the spool) now and waits
    /// until it is durable, at most `$timeoutMs` (default: option
    /// `flush_timeout_ms`). True when it is.
    #[php(optional = "timeout_ms")]
    pub fn flush(&self, timeout_ms: Option<i64>) -> PhpResult<bool> {
        let timeout = match timeout_ms {
            None => self.options.flush_timeout,
            Some(ms) if (0..=600_000).contains(&ms) => std::time::Duration::from_millis(ms as u64),
            Some(ms) => {
                return Err(invalid(format!(
                "{CLASS}::flush(): Argument #1 ($timeoutMs) must be between 0 and 600000, got {ms}"
            )))
            }
        };
        self.transport()?
            .flush(timeout)
            .map_err(|e| runtime(e.to_string()))
    }

    /// Counters of this process (generation): accepted, sent, buffered,
    /// spooled, dropped (and by reason), invalid, errors, ...
    pub fn stats(&self) -> PhpResult<ZBox<ZendHashTable>> {
        let transport = self.transport()?;
        transport.log_losses();
        let snap = transport.snapshot();
        let mut ht = ZendHashTable::new();
        for (k, v) in &snap.pairs {
            ht.insert(*k, *v as i64)
                .map_err(|e| runtime(e.to_string()))?;
        }
        let extra = [
            ("last_error", snap.last_error),
            ("origin", format!("{:016x}", snap.origin)),
            ("socket", snap.socket),
            ("spool_dir", snap.spool_dir),
        ];
        for (k, v) in extra {
            ht.insert(k, v).map_err(|e| runtime(e.to_string()))?;
        }
        Ok(ht)
    }
}

/// Parses a numeric sample as PHP's `is_numeric` would accept it.
fn numeric(zv: &Zval) -> Option<f64> {
    let zv = zv.dereference();
    if let Some(i) = zv.long() {
        return Some(i as f64);
    }
    if let Some(d) = zv.double() {
        return Some(d);
    }
    let s = zv
        .str()?
        .trim_matches(|c: char| c == ' ' || ('\t'..='\r').contains(&c));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits_ok = {
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        (!int.is_empty() || !frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if digits_ok && exp_ok {
        s.parse::<f64>().ok()
    } else {
        None
    }
}

/// One sample's series (its `channel` key, else `unknown`) and numeric value.
/// `at` names the sample in messages (`...: $dataArray[3]`).
fn sample_of(at: &str, item: &Zval, key_buf: &mut Vec<u8>) -> PhpResult<f64> {
    let fields = item.dereference().array().ok_or_else(|| {
        invalid(format!(
            "{at} must be an array with 'channel' and 'value', {} given",
            type_name(item)
        ))
    })?;
    key_buf.clear();
    match fields.get("channel").map(Zval::dereference) {
        None => key_buf.extend_from_slice(b"unknown"),
        Some(c) if c.is_null() => key_buf.extend_from_slice(b"unknown"),
        Some(c) => {
            if let Some(s) = c.zend_str() {
                let bytes = s.as_bytes();
                if std::str::from_utf8(bytes).is_err() {
                    return Err(invalid(format!("{at}['channel'] is not valid UTF-8")));
                }
                key_buf.extend_from_slice(bytes);
            } else if let Some(i) = c.long() {
                json::write_i64(key_buf, i);
            } else {
                return Err(invalid(format!(
                    "{at}['channel'] must be a string or int, {} given",
                    type_name(c)
                )));
            }
        }
    }
    let value = fields
        .get("value")
        .ok_or_else(|| invalid(format!("{at} has no 'value'")))?;
    finite(&format!("{at}['value']"), value)
}

/// A finite number, or a clear error naming `at`.
fn finite(at: &str, value: &Zval) -> PhpResult<f64> {
    let v = numeric(value)
        .ok_or_else(|| invalid(format!("{at} must be a number, {} given", type_name(value))))?;
    if !v.is_finite() {
        return Err(invalid(format!(
            "{at} is {}; JSON cannot represent NAN or INF",
            scada_core::json::NonFinite(v)
        )));
    }
    Ok(v)
}

/// Visits the samples of `$data` as `broadcastAggregatedData` accepts them:
/// one sample (`['channel' => 'PLC-1', 'value' => 42.1, ...]`), a list of
/// samples, or a flat map `tag => number`.
fn for_each_sample(
    arg: &Arg,
    data: &Zval,
    mut f: impl FnMut(&[u8], f64) -> PhpResult<()>,
) -> PhpResult<()> {
    let ht = data
        .dereference()
        .array()
        .ok_or_else(|| arg.wrong_type("array", data))?;
    if ht.is_empty() {
        return Err(invalid(format!(
            "{} must contain at least one sample",
            arg.prefix()
        )));
    }
    let mut key_buf = Vec::new();
    if is_list_array(ht) {
        let mut i = 0usize;
        try_for_each(ht, |_, item| {
            let v = sample_of(
                &format!("{}: ${}[{i}]", arg.prefix(), arg.name),
                item,
                &mut key_buf,
            )?;
            i += 1;
            f(&key_buf, v)
        })?;
    } else if ht.get("value").is_some() {
        let v = sample_of(
            &format!("{}: ${}", arg.prefix(), arg.name),
            data,
            &mut key_buf,
        )?;
        f(&key_buf, v)?;
    } else {
        // ['temperature' => 21.5, ...]: the key names the series.
        try_for_each(ht, |key, value| {
            let at = format!("{}: ${}[{}]", arg.prefix(), arg.name, key.quoted());
            let v = finite(&at, value)?;
            key_buf.clear();
            match key {
                Key::Index(i) => json::write_i64(&mut key_buf, i),
                Key::Str(s) if std::str::from_utf8(s).is_ok() => key_buf.extend_from_slice(s),
                Key::Str(_) => return Err(invalid(format!("{at}: the key is not valid UTF-8"))),
            }
            f(&key_buf, v)
        })?;
    }
    Ok(())
}

/// The seed's aggregateBatchData, with errors instead of silent zeros.
fn aggregate_items(arg: &Arg, items: &ZendHashTable) -> PhpResult<SeriesTable> {
    if items.is_empty() {
        return Err(invalid(format!(
            "{} must contain at least one sample",
            arg.prefix()
        )));
    }
    let mut table = SeriesTable::new();
    let mut key_buf = Vec::new();
    try_for_each(items, |key, item| {
        let at = format!("{}: ${}[{}]", arg.prefix(), arg.name, key.quoted());
        let v = sample_of(&at, item, &mut key_buf)?;
        table.add(&key_buf, v);
        Ok::<_, PhpException>(())
    })?;
    Ok(table)
}

/// True when a PHP exception is pending (user code threw).
fn exception_pending() -> bool {
    // SAFETY: the executor globals exist for the life of the request; reading
    // one pointer on the PHP thread.
    unsafe {
        !(*ext_php_rs::ffi::ext_php_rs_executor_globals())
            .exception
            .is_null()
    }
}

/// Channel names copied out of an argument, in one buffer.
#[derive(Default)]
struct ChannelNames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl ChannelNames {
    fn push(&mut self, name: &[u8]) {
        self.bytes.extend_from_slice(name);
        self.ends.push(self.bytes.len());
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn as_slices(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.bytes[start..end];
                start = end;
                s
            })
            .collect()
    }
}
