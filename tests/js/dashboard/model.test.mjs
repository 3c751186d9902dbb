// The page's pure logic (php/resources/dashboard/js/model.js, config.js) under node.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readConfig, isAlarmChannel, DEFAULTS } from '../../../php/resources/dashboard/js/config.js';
import { RateMeter, Store, formatValue, parseAlarm, parseTags, parseTelemetry, parseTime } from '../../../php/resources/dashboard/js/model.js';

test('a window of broadcastAggregatedData becomes one point per series at the window end', () => {
  const t = parseTelemetry({
    data: { 'TT-101': { count: 3, sum: -15.75, min: -9, max: -1.25, average: -5.25, first: -5.5, last: -1.25 }, 'PT-2': { count: 1, sum: 2, min: 2, max: 2, average: 2, first: 2, last: 2 } },
    timestamp: '2026-12-02T07:00:00.300123Z',
    channel: 'plant-live',
    window: { start: '2026-12-02T07:00:00.000000Z', end: '2026-12-02T07:00:00.200000Z', throttle_ms: 200, samples: 4 },
  });
  assert.equal(t.at, Date.parse('2026-12-02T07:00:00.200Z'));
  assert.equal(t.samples, 4);
  assert.equal(t.window, true);
  assert.deepEqual(t.series, [
    { tag: 'TT-101', count: 3, min: -9, max: -1.25, avg: -5.25, last: -1.25, unit: null },
    { tag: 'PT-2', count: 1, min: 2, max: 2, avg: 2, last: 2, unit: null },
  ]);
});

test('plain samples (broadcastData), lists and flat maps are points too; anything else is not telemetry', () => {
  assert.deepEqual(parseTelemetry({ data: { channel: 'AI-7', value: '3.5', unit: 'mA' }, timestamp: 'x' }, 1000).series, [{ tag: 'AI-7', count: 1, min: 3.5, max: 3.5, avg: 3.5, last: 3.5, unit: 'mA' }]);
  assert.equal(parseTelemetry({ data: { channel: 'AI-7', value: 3.5 } }, 1000).at, 1000, 'no valid time: when it arrived');
  assert.deepEqual(parseTelemetry({ data: [{ channel: 'A', value: 1 }, { channel: 'B', value: 'x' }, { value: 2 }] }).series.map((s) => [s.tag, s.last]), [['A', 1], ['unknown', 2]]);
  assert.deepEqual(parseTelemetry({ temperature: 21.5, pressure: 1.2, note: 'x' }).series.map((s) => [s.tag, s.last]), [['temperature', 21.5], ['pressure', 1.2]]);
  for (const bad of [null, 'x', 42, {}, { data: null }, { data: { value: NaN } }, { data: { a: 'b' } }, { data: [] }]) {
    assert.equal(parseTelemetry(bad), null, JSON.stringify(bad));
  }
});

test('times with microseconds parse; garbage does not', () => {
  assert.equal(parseTime('2026-12-02T07:00:00.123456Z'), Date.parse('2026-12-02T07:00:00.123Z'));
  assert.equal(parseTime('nope'), null);
  assert.equal(parseTime(12), null);
});

test('tags, alarms: known fields kept, missing ones defaulted, a message made when none is given', () => {
  assert.deepEqual(parseTags({ tags: [{ tag: 'TT-1', unit: '°C', lo: '0', hi: 90 }, { label: 'no tag' }, null] }), [{ tag: 'TT-1', label: '', unit: '°C', area: '', lo: 0, hi: 90 }]);
  assert.deepEqual(parseTags({}), []);
  const a = parseAlarm({ tag: 'PT-2', state: 'low', value: 0.8, unit: 'bar' }, 5);
  assert.deepEqual(a, { tag: 'PT-2', state: 'low', value: 0.8, limit: null, unit: 'bar', message: 'PT-2 low: 0.8 bar', at: 5 });
  assert.equal(parseAlarm({ state: 'weird' }, 5).state, 'alarm');
  assert.equal(parseAlarm(null), null);
});

test('the store keeps history by time, the latest value and unit', () => {
  const store = new Store(10); // seconds
  for (let i = 0; i < 30; i++) {
    store.addTelemetry({ at: i * 1000, series: [{ tag: 'A', count: 2, min: i - 1, max: i + 1, avg: i, last: i + 0.5, unit: i === 3 ? 'bar' : null }] });
  }
  const a = store.get('A');
  assert.deepEqual(a.t, [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  assert.deepEqual([a.min[0], a.max[0], a.avg[0]], [18, 20, 19]);
  assert.equal(a.last, 29.5);
  assert.equal(a.unit, 'bar');
  store.addTags([{ tag: 'A', label: 'Flow', unit: '', area: 'X', lo: null, hi: 1 }]);
  assert.equal(a.unit, 'bar', 'a tag list without a unit keeps the one samples gave');
  assert.equal(a.label, 'Flow');
});

test('events per second over a sliding window', () => {
  const r = new RateMeter(2000);
  r.mark(0, 3);
  r.mark(1000, 1);
  assert.equal(r.rate(1500), 2);
  assert.equal(r.rate(2500), 0.5);
  assert.equal(r.rate(5000), 0);
});

test('values for people', () => {
  assert.deepEqual([1234.5, 182.25, 21.456, 3.14159, 0, -2.5, 1e7, 0.0001, null].map(formatValue), ['1235', '182.3', '21.46', '3.142', '0.000', '-2.500', '1.000e+7', '1.000e-4', '–']);
});

test('configuration: defaults, embedded JSON, query parameters on top, each error named', () => {
  const { config, errors } = readConfig(null, '');
  assert.deepEqual(errors, []);
  assert.equal(config.mode, 'sse');
  assert.deepEqual(config.channels, DEFAULTS.channels);
  const r = readConfig({ sseUrl: '/scada/sse', channels: ['a', 'b'] }, '?channels=c,c,d&history=60');
  assert.deepEqual(r.errors, []);
  assert.deepEqual([r.config.sseUrl, r.config.channels, r.config.historySeconds], ['/scada/sse', ['c', 'd'], 60]);
  // Without an embedded config (the static files alone) the query may choose the transport, on the page's own host.
  const s = readConfig(null, '?mode=pusher&key=k&host=localhost&port=6001&tls=1', 'http://localhost');
  assert.deepEqual(s.errors, []);
  assert.deepEqual([s.config.mode, s.config.key, s.config.host, s.config.port, s.config.tls], ['pusher', 'k', 'localhost', 6001, true]);
  assert.deepEqual(readConfig({ bogus: 1 }, '').errors, ['embedded config: unknown setting "bogus"']);
  assert.deepEqual(readConfig([1], '').errors, ['embedded config: must be a JSON object']);
  assert.deepEqual(readConfig(null, '?history=1&offline_after_ms=x').errors, ['historySeconds: "1" must be a number of at least 5', 'offlineAfterMs: "x" must be a number of at least 100']);
  assert.ok(isAlarmChannel(DEFAULTS, 'alarms-plant'));
  assert.ok(isAlarmChannel(DEFAULTS, 'private-alarms-plant'));
  assert.ok(!isAlarmChannel(DEFAULTS, 'plant-alarms'));
});

test('a link cannot re-point the page: with an embedded config the query sets no URL, host or key; other origins are refused', () => {
  const page = 'https://scada.example';
  const embedded = { channels: ['a'], sseUrl: '/sse', tokenUrl: '/broadcasting/sse-token' };
  for (const name of ['mode', 'sse', 'token_url', 'auth_endpoint', 'key', 'host', 'port', 'tls', 'cluster']) {
    const r = readConfig(embedded, `?${name}=x`, page);
    assert.deepEqual(r.errors, [`${name}: refused from the address bar: the server's configuration sets where this page connects (the query may choose only channels, history, offline_after_ms)`]);
    assert.equal(r.config.sseUrl, '/sse');
    assert.equal(r.config.tokenUrl, '/broadcasting/sse-token');
  }
  // No embedded config: the query may name URLs, but only on the page's origin.
  const refused = (key, value) => `${key}: refused "${value}": its origin ${new URL(value, page).origin} is not this page's (${page}) nor one the server's configuration lists`;
  assert.deepEqual(readConfig(null, '?sse=http://other.example/sse', page).errors, [refused('sseUrl', 'http://other.example/sse')]);
  assert.deepEqual(readConfig(null, '?sse=//other.example/sse', page).errors, [refused('sseUrl', '//other.example/sse')]);
  assert.deepEqual(readConfig(null, '?token_url=https://other.example/t', page).errors, [refused('tokenUrl', 'https://other.example/t')]);
  assert.deepEqual(readConfig(null, '?sse=http://scada.example/sse', page).errors, [refused('sseUrl', 'http://scada.example/sse')], 'another scheme is another origin');
  assert.deepEqual(readConfig(null, '?mode=pusher&key=k&host=evil.example', page).errors, ['host: refused "evil.example": not this page\'s host (scada.example) nor one the server\'s configuration lists']);
  assert.deepEqual(readConfig(null, '?sse=/sse&token_url=/t', page).errors, []);
  // The server may list another origin explicitly (a sidecar on its own port), and a Pusher host.
  const listed = readConfig({ sseUrl: 'https://scada.example:8443/sse', allowedOrigins: ['https://scada.example:8443', 'wss://ws.example'], mode: 'pusher', key: 'k', host: 'ws.example' }, '', page);
  assert.deepEqual(listed.errors, []);
  assert.deepEqual(readConfig({ sseUrl: 'https://scada.example:9999/sse', allowedOrigins: ['https://scada.example:8443'] }, '', page).errors, [refused('sseUrl', 'https://scada.example:9999/sse')]);
  assert.deepEqual(readConfig({ allowedOrigins: 'x' }, '', page).errors, ['allowedOrigins: must be a list of origins such as "https://scada.example:8443"']);
});

test('a point older than the newest goes where it belongs: x stays ascending, the latest value stays the newest', () => {
  const store = new Store(60);
  const point = (tag, at, v) => ({ at, samples: 1, window: true, series: [{ tag, count: 1, min: v, max: v, avg: v, last: v, unit: null }] });
  for (const [at, v] of [[10000, 1], [12000, 3], [11000, 2], [9000, 0], [12000, 4]]) {
    store.addTelemetry(point('TT-1', at, v));
  }
  const s = store.series.get('TT-1');
  assert.deepEqual(s.t, [9, 10, 11, 12, 12]);
  assert.deepEqual(s.avg, [0, 1, 2, 3, 4]);
  assert.equal(s.last, 4);
  assert.equal(s.lastAt, 12000);
  // Late and outside the history: trimmed against the newest point, not against itself.
  store.addTelemetry(point('TT-1', 12000 - 61000, -1));
  assert.deepEqual(s.t, [9, 10, 11, 12, 12]);
  assert.equal(s.last, 4);
});
