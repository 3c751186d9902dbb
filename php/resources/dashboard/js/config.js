// The page's configuration: defaults, then the JSON the server embedded in
// the page (<script type="application/json" id="scada-dashboard-config">,
// filled by Laravel's /scada/dashboard route), then query parameters:
//   ?channels=plant-live,alarms-plant&history=120&offline_after_ms=15000
// and, only on a page without an embedded config (the static files on their own):
//   &mode=sse|pusher&sse=/sse&token_url=…&key=…&host=…&port=…&tls=0|1&cluster=…
// A link must not re-point the page: with an embedded config the query may not
// name where to connect or send credentials (an error, not silently ignored), and
// a sseUrl/tokenUrl/authEndpoint (or Pusher host) on another origin than the
// page's is refused unless the embedded config lists it in allowedOrigins.
// Pure (no DOM): tested under node.

export const DEFAULTS = Object.freeze({
  mode: 'sse',
  channels: ['plant-live', 'alarms-plant'],
  // SSE: the sidecar's listener and the app's token route (private-*/presence-* channels only).
  sseUrl: '/sse',
  tokenUrl: '/broadcasting/sse-token',
  // Pusher protocol (Pusher Channels, Reverb, Soketi, Sockudo) through pusher-js.
  key: null,
  host: null,
  port: null,
  tls: false,
  cluster: 'mt1',
  authEndpoint: '/broadcasting/auth',
  // Channels named so carry alarms; the others telemetry windows and tag metadata.
  alarmChannelPrefix: 'alarms-',
  events: { data: 'scada.data.received', tags: 'scada.tags', alarm: 'scada.alarm' },
  historySeconds: 120,
  // No stream for this long (or the browser offline): "offline" instead of "reconnecting".
  offlineAfterMs: 15000,
  toastMs: 8000,
  // Origins (scheme://host[:port]) besides the page's own that sseUrl, tokenUrl,
  // authEndpoint and the Pusher host may be on; only the embedded config sets it.
  allowedOrigins: [],
});

// What a query may set: display and channel choice only.
const QUERY_DISPLAY = [['channels', 'channels'], ['history', 'historySeconds'], ['offline_after_ms', 'offlineAfterMs']];
// Where the page connects and sends its session's credentials: never from a query when the server embedded a config.
const QUERY_WHERE = [['mode', 'mode'], ['sse', 'sseUrl'], ['token_url', 'tokenUrl'], ['auth_endpoint', 'authEndpoint'], ['key', 'key'], ['host', 'host'], ['port', 'port'], ['tls', 'tls'], ['cluster', 'cluster']];

// Pusher's channel name rule, as the extension and the sidecar apply it.
const CHANNEL = /^[A-Za-z0-9_\-=@.;]{1,200}$/;

/**
 * @param {object|null} embedded the server's JSON (may be null)
 * @param {string} search location.search
 * @param {string} pageOrigin location.origin (URLs resolve against it; other origins are refused)
 * @returns {{config: object, errors: string[]}} errors name the setting and what is wrong
 */
export function readConfig(embedded, search, pageOrigin = 'http://localhost') {
  const errors = [];
  const config = { ...DEFAULTS, events: { ...DEFAULTS.events } };
  const hasEmbedded = embedded !== null && embedded !== undefined;
  if (hasEmbedded) {
    if (typeof embedded !== 'object' || Array.isArray(embedded)) {
      errors.push('embedded config: must be a JSON object');
    } else {
      for (const [k, v] of Object.entries(embedded)) {
        if (!(k in DEFAULTS)) {
          errors.push(`embedded config: unknown setting "${k}"`);
        } else if (k === 'events') {
          Object.assign(config.events, v);
        } else {
          config[k] = v;
        }
      }
    }
  }
  const q = new URLSearchParams(search);
  for (const [name, key] of QUERY_DISPLAY) {
    if (q.has(name)) {
      config[key] = q.get(name);
    }
  }
  for (const [name, key] of QUERY_WHERE) {
    if (!q.has(name)) {
      continue;
    }
    if (hasEmbedded) {
      errors.push(`${name}: refused from the address bar: the server's configuration sets where this page connects (the query may choose only channels, history, offline_after_ms)`);
    } else {
      config[key] = q.get(name);
    }
  }
  checkOrigins(config, pageOrigin, errors);

  if (typeof config.channels === 'string') {
    config.channels = config.channels.split(',').map((c) => c.trim()).filter(Boolean);
  }
  if (!Array.isArray(config.channels) || config.channels.length === 0) {
    errors.push('channels: give at least one channel, e.g. ?channels=plant-live,alarms-plant');
    config.channels = [];
  } else {
    for (const c of config.channels) {
      if (typeof c !== 'string' || !CHANNEL.test(c)) {
        errors.push(`channels: "${String(c).slice(0, 60)}" is not a channel name (1-200 characters of A-Za-z0-9_-=@.;)`);
      }
    }
    config.channels = [...new Set(config.channels)];
  }
  if (!['sse', 'pusher'].includes(config.mode)) {
    errors.push(`mode: "${config.mode}" is neither sse nor pusher`);
  }
  if (config.mode === 'pusher' && !config.key) {
    errors.push('key: mode=pusher needs the app key (?key=…)');
  }
  if (config.port !== null && config.port !== '') {
    const port = Number(config.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      errors.push(`port: "${config.port}" is not a TCP port`);
    }
    config.port = port;
  } else {
    config.port = null;
  }
  config.tls = config.tls === true || config.tls === '1' || config.tls === 'true';
  for (const [key, min] of [['historySeconds', 5], ['offlineAfterMs', 100], ['toastMs', 500]]) {
    const n = Number(config[key]);
    if (!Number.isFinite(n) || n < min) {
      errors.push(`${key}: "${config[key]}" must be a number of at least ${min}`);
    }
    config[key] = n;
  }
  if (typeof config.sseUrl !== 'string' || config.sseUrl === '') {
    errors.push('sseUrl: must be a URL');
  }
  return { config, errors };
}

/** sseUrl, tokenUrl, authEndpoint and the Pusher host: on the page's origin or one the embedded config lists. */
function checkOrigins(config, pageOrigin, errors) {
  const allowed = new Set([pageOrigin]);
  if (!Array.isArray(config.allowedOrigins) || config.allowedOrigins.some((o) => typeof o !== 'string')) {
    errors.push('allowedOrigins: must be a list of origins such as "https://scada.example:8443"');
    config.allowedOrigins = [];
  }
  for (const origin of config.allowedOrigins) {
    allowed.add(origin.replace(/\/+$/, ''));
  }
  for (const key of ['sseUrl', 'tokenUrl', 'authEndpoint']) {
    const value = config[key];
    if (value === null || value === undefined || (key !== 'sseUrl' && value === '')) {
      continue;
    }
    let url;
    try {
      url = new URL(String(value), pageOrigin + '/');
    } catch {
      errors.push(`${key}: "${String(value).slice(0, 80)}" is not a URL`);
      continue;
    }
    if (!['http:', 'https:'].includes(url.protocol) || !allowed.has(url.origin)) {
      errors.push(`${key}: refused "${String(value).slice(0, 80)}": its origin ${url.origin} is not this page's (${pageOrigin}) nor one the server's configuration lists`);
    }
  }
  if (config.mode === 'pusher' && config.host) {
    const page = new URL(pageOrigin + '/');
    const listed = [...allowed].some((o) => {
      try {
        return new URL(o).hostname === String(config.host);
      } catch {
        return false;
      }
    });
    if (String(config.host) !== page.hostname && !listed) {
      errors.push(`host: refused "${String(config.host).slice(0, 80)}": not this page's host (${page.hostname}) nor one the server's configuration lists`);
    }
  }
}

export function isAlarmChannel(config, name) {
  return name.replace(/^(private-|presence-)/, '').startsWith(config.alarmChannelPrefix);
}
