// The live SCADA dashboard: reads its configuration, connects (SSE or
// pusher-js), folds each event into the store and redraws. A read-only
// window.scadaDashboard.stats() tells tests (and curious operators) what
// arrived: event ids in order, counts, connection states, errors.

import { readConfig } from './config.js';
import { RateMeter, Store, parseAlarm, parseTags, parseTelemetry } from './model.js';
import { connect } from './transport.js';
import { View } from './view.js';

const MAX_IDS = 100000;
const MAX_KEPT = 500; // alarms and errors kept for stats(), newest last

function keep(list, item) {
  list.push(item);
  if (list.length > MAX_KEPT) {
    list.splice(0, list.length - MAX_KEPT);
  }
}

function embeddedConfig(errors) {
  const el = document.getElementById('scada-dashboard-config');
  const text = el?.textContent.trim() ?? '';
  if (text === '') {
    return null;
  }
  try {
    const parsed = JSON.parse(text);
    // The static file's placeholder {}: no server behind the page, the query may choose the transport.
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && Object.keys(parsed).length === 0 ? null : parsed;
  } catch (e) {
    errors.push(`embedded config: not JSON (${e.message})`);
    return null;
  }
}

const early = [];
const { config, errors } = readConfig(embeddedConfig(early), location.search, location.origin);
errors.unshift(...early);
const view = new View(document, config);
const store = new Store(config.historySeconds);
const events = new RateMeter(5000);
const samples = new RateMeter(5000);
const started = Date.now();
const seen = new Set();
const stats = {
  state: 'connecting',
  states: ['connecting'], // every change, in order
  ids: [], // SSE ids in the order their events were shown
  duplicateIds: 0,
  events: 0,
  windows: 0,
  samples: 0,
  alarms: [],
  gaps: [],
  errors: [], // transport errors (drops, refusals), shown in the status bar; not console errors
  lastEventAt: null,
};
let transportStatus = 'connecting';
// A 401/419 from the token route: the session is gone (logged out, expired); only a reload (and login) helps.
let authorizationLost = false;
let everConnected = false;
let lostSince = null;

function setState(state) {
  if (authorizationLost) {
    state = 'unauthorized';
  }
  if (stats.state !== state) {
    stats.state = state;
    keep(stats.states, state);
    view.setState(state);
  }
}

function onStatus(status) {
  transportStatus = status;
  if (status === 'connected') {
    everConnected = true;
    lostSince = null;
    setState('connected');
  } else {
    lostSince ??= Date.now();
    setState(everConnected ? 'reconnecting' : 'connecting');
  }
  tick();
}

function onEvent(kind, channel, payload, id) {
  const now = Date.now();
  if (id !== null) {
    // Per (channel, id): one event on two of the page's channels is shown on both, once each.
    const key = `${channel}\n${id}`;
    if (seen.has(key)) {
      stats.duplicateIds++;
      return;
    }
    if (seen.size >= MAX_IDS) {
      seen.clear(); // bounded: the connector already drops repeats, this only counts any that slip through
    }
    seen.add(key);
    if (stats.ids.length < MAX_IDS && stats.ids.at(-1) !== id) {
      stats.ids.push(id); // each event's id once, in the order shown
    }
  }
  stats.events++;
  stats.lastEventAt = now;
  events.mark(now);
  if (kind === 'data') {
    const t = parseTelemetry(payload, now);
    if (t) {
      stats.windows += t.window ? 1 : 0;
      stats.samples += t.samples;
      samples.mark(now, t.samples);
      store.addTelemetry(t).forEach((s) => view.touch(s));
    }
  } else if (kind === 'tags') {
    view.regroup(store.addTags(parseTags(payload)));
  } else if (kind === 'alarm') {
    const alarm = parseAlarm(payload, now);
    if (alarm) {
      keep(stats.alarms, { ...alarm, channel });
      view.toast(alarm);
    }
  }
}

function tick() {
  const now = Date.now();
  if (transportStatus !== 'connected') {
    const since = lostSince ?? started;
    if (now - since >= config.offlineAfterMs || navigator.onLine === false) {
      setState('offline');
    }
  }
  view.setFooter({
    sinceMs: stats.lastEventAt === null ? null : now - stats.lastEventAt,
    eventsPerSecond: events.rate(now),
    samplesPerSecond: samples.rate(now),
    lastError: stats.errors.at(-1) ?? null,
  });
}

window.scadaDashboard = Object.freeze({
  config: structuredClone(config),
  stats() {
    const now = Date.now();
    const series = {};
    for (const s of store.series.values()) {
      series[s.tag] = { value: s.last, unit: s.unit, label: s.label, area: s.area, points: s.t.length, window: s.window, min: [...s.min], max: [...s.max], avg: [...s.avg] };
    }
    return structuredClone({ ...stats, eventsPerSecond: events.rate(now), samplesPerSecond: samples.rate(now), series });
  },
});

if (errors.length) {
  view.showErrors(errors);
  setState('offline');
} else {
  view.setState('connecting');
  setInterval(tick, 250);
  tick();
  connect(config, {
    event: onEvent,
    status: onStatus,
    gap: (gap) => {
      keep(stats.gaps, gap);
      const d = gap.data ?? {};
      view.showNotice(`Missed events on ${gap.channels.join(', ')}${d.from !== undefined ? ` (ids ${d.from}–${d.to})` : ''}${d.reason ? `: ${d.reason}` : ''}; the charts continue from the next window.`);
    },
    error: (message) => keep(stats.errors, message),
    refused: (channel, status) => {
      if (status === 401 || status === 419) {
        authorizationLost = true;
        setState('unauthorized');
        view.showNotice(`The session's authorization for ${channel} was refused (HTTP ${status}): reload the page (and log in again) to see it.`);
      }
    },
  }).catch((e) => {
    keep(stats.errors, e.message);
    view.showErrors([`cannot connect: ${e.message}`]);
    setState('offline');
  });
}
