// What the dashboard knows, from the events it receives: per tag the latest
// value, unit and a bounded history of points (one per aggregation window),
// alarms, and rates. Pure (no DOM, no network): tested under node.
//
// A telemetry event is `scada.data.received` as a Pusher client receives it:
//   a window of broadcastAggregatedData / an `aggregate` throttle rule:
//     {"data": {"TT-101": {count, sum, min, max, average, first, last}, …},
//      "timestamp", "channel", "window": {start, end, throttle_ms, samples}}
//   or a plain sample of broadcastData: {"data": {"channel": "TT-101", "value": 21.5, "unit": "°C"}, "timestamp", …},
//   a list of samples, or a flat map tag => number.

/** ISO 8601 with up to 9 fractional digits → epoch ms (Date.parse wants at most 3). */
export function parseTime(iso) {
  if (typeof iso !== 'string') {
    return null;
  }
  const ms = Date.parse(iso.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(ms) ? ms : null;
}

const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null);

function isStats(v) {
  return v !== null && typeof v === 'object' && finite(v.count) !== null && finite(v.min) !== null && finite(v.max) !== null;
}

function sample(obj) {
  const value = finite(obj?.value);
  if (value === null) {
    return null;
  }
  const tag = typeof obj.channel === 'string' || typeof obj.channel === 'number' ? String(obj.channel) : 'unknown';
  return { tag, count: 1, min: value, max: value, avg: value, last: value, unit: typeof obj.unit === 'string' ? obj.unit : null };
}

/**
 * @returns {{at: number, samples: number, window: boolean, series: object[]}|null}
 *   null when the payload holds no telemetry
 */
export function parseTelemetry(payload, receivedAt = Date.now()) {
  if (payload === null || typeof payload !== 'object') {
    return null;
  }
  const data = 'data' in payload ? payload.data : payload;
  const series = [];
  const isWindow = payload.window !== null && typeof payload.window === 'object';
  if (Array.isArray(data)) {
    for (const item of data) {
      const s = sample(item);
      if (s) {
        series.push(s);
      }
    }
  } else if (data !== null && typeof data === 'object') {
    if ('value' in data) {
      const s = sample(data);
      if (s) {
        series.push(s);
      }
    } else {
      for (const [tag, v] of Object.entries(data)) {
        if (isStats(v)) {
          const avg = finite(v.average) ?? (finite(v.sum) !== null ? v.sum / v.count : (v.min + v.max) / 2);
          series.push({ tag, count: v.count, min: v.min, max: v.max, avg, last: finite(v.last) ?? avg, unit: null });
        } else if (finite(v) !== null) {
          const n = finite(v);
          series.push({ tag, count: 1, min: n, max: n, avg: n, last: n, unit: null });
        }
      }
    }
  }
  if (series.length === 0) {
    return null;
  }
  const at = (isWindow ? parseTime(payload.window.end) : null) ?? parseTime(payload.timestamp) ?? receivedAt;
  const samples = isWindow && finite(payload.window.samples) !== null ? payload.window.samples : series.reduce((n, s) => n + s.count, 0);
  return { at, samples, window: isWindow, series };
}

/** `scada.tags`: {"tags": [{tag, label, unit, area, lo, hi}, …]} (plant.php sends it; the last one is replayed on connect). */
export function parseTags(payload) {
  const list = Array.isArray(payload?.tags) ? payload.tags : [];
  return list
    .filter((t) => t && typeof t.tag === 'string' && t.tag !== '')
    .map((t) => ({
      tag: t.tag,
      label: typeof t.label === 'string' ? t.label : '',
      unit: typeof t.unit === 'string' ? t.unit : '',
      area: typeof t.area === 'string' ? t.area : '',
      lo: finite(t.lo),
      hi: finite(t.hi),
    }));
}

/** `scada.alarm`: {tag, state: high|low|normal, value, limit, unit, message, at}. */
export function parseAlarm(payload, receivedAt = Date.now()) {
  if (payload === null || typeof payload !== 'object') {
    return null;
  }
  const state = ['high', 'low', 'normal'].includes(payload.state) ? payload.state : 'alarm';
  const tag = typeof payload.tag === 'string' ? payload.tag : '';
  const value = finite(payload.value);
  const unit = typeof payload.unit === 'string' ? payload.unit : '';
  const message = typeof payload.message === 'string' && payload.message !== ''
    ? payload.message
    : `${tag || 'alarm'} ${state}${value !== null ? `: ${value} ${unit}`.trimEnd() : ''}`;
  return { tag, state, value, limit: finite(payload.limit), unit, message, at: parseTime(payload.at) ?? receivedAt };
}

/** Events per second over a sliding window. */
export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.marks = []; // [time, n]
  }

  mark(now, n = 1) {
    this.marks.push([now, n]);
    this.trim(now);
  }

  trim(now) {
    while (this.marks.length && this.marks[0][0] <= now - this.windowMs) {
      this.marks.shift();
    }
  }

  rate(now) {
    this.trim(now);
    const total = this.marks.reduce((sum, [, n]) => sum + n, 0);
    return total / (this.windowMs / 1000);
  }
}

/** One tag: metadata, the latest value and its history (column arrays, as uPlot wants them). */
export class Series {
  constructor(tag) {
    this.tag = tag;
    this.label = '';
    this.unit = '';
    this.area = '';
    this.lo = null;
    this.hi = null;
    this.last = null;
    this.lastAt = null;
    this.window = null; // the latest point's {count, min, max, avg}
    this.t = []; // seconds (uPlot's time scale)
    this.min = [];
    this.max = [];
    this.avg = [];
  }

  push(at, s, historyMs) {
    // uPlot needs x ascending: a point older than the newest (two channels feeding one tag,
    // a clock step on the sending side) goes where it belongs, not at the end.
    const x = at / 1000;
    let i = this.t.length;
    while (i > 0 && this.t[i - 1] > x) {
      i--;
    }
    this.t.splice(i, 0, x);
    this.min.splice(i, 0, s.min);
    this.max.splice(i, 0, s.max);
    this.avg.splice(i, 0, s.avg);
    if (this.lastAt === null || at >= this.lastAt) {
      // The latest value is the newest point's, whatever order they came in.
      this.last = s.last;
      this.lastAt = at;
      this.window = { count: s.count, min: s.min, max: s.max, avg: s.avg };
    }
    if (s.unit) {
      this.unit = s.unit;
    }
    const oldest = (this.lastAt - historyMs) / 1000;
    let cut = 0;
    while (cut < this.t.length - 1 && this.t[cut] < oldest) {
      cut++;
    }
    if (cut > 0) {
      for (const col of [this.t, this.min, this.max, this.avg]) {
        col.splice(0, cut);
      }
    }
  }
}

export class Store {
  constructor(historySeconds = 120) {
    this.historyMs = historySeconds * 1000;
    this.series = new Map(); // tag → Series, in order of first appearance (or of the tag list)
  }

  get(tag) {
    let s = this.series.get(tag);
    if (!s) {
      s = new Series(tag);
      this.series.set(tag, s);
    }
    return s;
  }

  /** @returns {Series[]} the series the telemetry touched */
  addTelemetry(t) {
    return t.series.map((s) => {
      const series = this.get(s.tag);
      series.push(t.at, s, this.historyMs);
      return series;
    });
  }

  /** @returns {Series[]} every series the list names */
  addTags(tags) {
    return tags.map((t) => Object.assign(this.get(t.tag), { label: t.label, unit: t.unit || this.get(t.tag).unit, area: t.area, lo: t.lo, hi: t.hi }));
  }
}

/** A value for people: 4 significant digits, no exponent for plant-sized numbers. */
export function formatValue(v) {
  if (v === null || v === undefined) {
    return '–';
  }
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) {
    return v.toExponential(3);
  }
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : 3;
  return v.toFixed(digits);
}
