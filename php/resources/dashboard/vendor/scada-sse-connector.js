// A laravel-echo connector over the scada-broadcast sidecar's server-sent
// events (GET /sse?channels=a,b&envelope=1[&token=…][&last_event_id=…]):
//
//   import Echo from 'laravel-echo';
//   import { ScadaSseConnector } from '.../scada-sse-connector.js';
//   window.Echo = new Echo({ broadcaster: ScadaSseConnector, sseUrl: '/sse', tokenUrl: '/broadcasting/sse-token' });
//   Echo.channel('scada-realtime').listen('.scada.data.received', (data) => …);
//   Echo.private('plant.1').listen('SensorAlarm', (data) => …);
//
// ONE EventSource carries every subscribed channel (browsers allow 6 HTTP/1.1
// connections per origin). With envelope=1 each event's data is
// {"channels":[…],"data":payload}: the subscribed channels it is on, so an
// event on two of them comes once and is dispatched to both. When the set
// changes the stream is reopened with the new set, resuming after the last
// event id seen. When the token it was opened with expires the sidecar sends
// `event: expired` and ends it: the connector fetches a new token and resumes
// after the last id (no gap, no repeat). It reconnects by itself (with
// backoff) after any error, because an EventSource that got a non-200 answer
// never retries on its own; a token is kept until near its expiry and dropped
// only on an explicit 401/403 (a browser's EventSource error carries no
// status, so after two failed connects in a row a fetch of the same URL asks).
// A plain ES module without imports: no build step; tested with laravel-echo 1.19 and 2.5.

const DEFAULTS = {
  sseUrl: '/sse',
  tokenUrl: '/broadcasting/sse-token',
  auth: { headers: {} },
  csrfToken: null,
  bearerToken: null,
  namespace: 'App.Events',
  withCredentials: false,
  // Backoff between reconnection attempts: doubles from reconnectDelayMs up to maxReconnectDelayMs.
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 30000,
  // A token expiring sooner than this is fetched again before connecting.
  tokenRefreshMarginSeconds: 10,
  // onGap({ channels, data }): the server could not resume (events were missed). onError(error): token or stream errors.
  onGap: null,
  onError: null,
  // Injectable for tests and non-browser runtimes (default: the global ones).
  EventSource: null,
  fetch: null,
};

const RESERVED_EVENTS = ['gap', 'overflow', 'expired'];

/** Channels the sidecar opens only with a token (Laravel's guarded channels). */
export function isProtectedChannel(name) {
  return name.startsWith('private-') || name.startsWith('presence-');
}

/** Echo's event-name rule: '.name' or '\\Name' literal, otherwise namespaced with '.' → '\\'. */
export class EventFormatter {
  constructor(namespace) {
    this.namespace = namespace;
  }

  format(event) {
    if (['.', '\\'].includes(event.charAt(0))) {
      return event.substring(1);
    }
    if (this.namespace) {
      event = this.namespace + '.' + event;
    }
    return event.replace(/\./g, '\\');
  }

  setNamespace(namespace) {
    this.namespace = namespace;
  }
}

/** Echo's Channel interface for one channel of the shared stream. */
export class ScadaSseChannel {
  constructor(connector, name, options) {
    this.connector = connector;
    this.name = name;
    this.options = options;
    this.eventFormatter = new EventFormatter(options.namespace);
    this.listeners = new Map(); // formatted event name → callbacks
    this.globalListeners = [];
    this.subscribedCallbacks = [];
    this.errorCallbacks = [];
    this.notificationCreatedEvent = '.Illuminate\\Notifications\\Events\\BroadcastNotificationCreated';
    this.refused = false; // the token route refused it: left out of the stream until subscribed again
  }

  listen(event, callback) {
    return this.on(this.eventFormatter.format(event), callback);
  }

  on(event, callback) {
    if (!this.listeners.has(event)) {
      this.listeners.set(event, []);
    }
    this.listeners.get(event).push(callback);
    this.connector.eventNamesChanged();
    return this;
  }

  /** Only events some channel listens for (an EventSource has no wildcard), plus unnamed ones. */
  listenToAll(callback) {
    this.globalListeners.push(callback);
    return this;
  }

  stopListening(event, callback) {
    const name = this.eventFormatter.format(event);
    const remaining = callback ? (this.listeners.get(name) || []).filter((cb) => cb !== callback) : [];
    if (remaining.length) {
      this.listeners.set(name, remaining);
    } else {
      this.listeners.delete(name);
    }
    return this;
  }

  stopListeningToAll(callback) {
    this.globalListeners = callback ? this.globalListeners.filter((cb) => cb !== callback) : [];
    return this;
  }

  subscribed(callback) {
    this.subscribedCallbacks.push(callback);
    return this;
  }

  error(callback) {
    this.errorCallbacks.push(callback);
    return this;
  }

  notification(callback) {
    return this.listen(this.notificationCreatedEvent, callback);
  }

  stopListeningForNotification(callback) {
    return this.stopListening(this.notificationCreatedEvent, callback);
  }

  // Client events travel from browser to browser through a WebSocket server; SSE is one-way.
  listenForWhisper(event, callback) {
    return this.listen('.client-' + event, callback);
  }

  stopListeningForWhisper(event, callback) {
    return this.stopListening('.client-' + event, callback);
  }

  whisper() {
    throw new Error(`scada SSE: cannot whisper on ${this.name}: server-sent events are one-way (use a WebSocket broadcaster for client events)`);
  }

  eventNames() {
    return [...this.listeners.keys()];
  }

  dispatch(event, data) {
    for (const callback of this.listeners.get(event) || []) {
      callback(data);
    }
    if (this.globalListeners.length) {
      const namespace = String(this.options.namespace ?? '').replace(/\./g, '\\');
      const short = namespace && event.startsWith(namespace + '\\') ? event.substring(namespace.length + 1) : '.' + event;
      for (const callback of this.globalListeners) {
        callback(short, data);
      }
    }
  }

  notifySubscribed() {
    for (const callback of this.subscribedCallbacks) {
      callback();
    }
  }

  notifyError(error) {
    for (const callback of this.errorCallbacks) {
      callback(error);
    }
  }
}

export class ScadaSsePrivateChannel extends ScadaSseChannel {}

/** Presence over SSE: the channel's events, no member list (SSE carries no membership). */
export class ScadaSsePresenceChannel extends ScadaSseChannel {
  here() {
    return this;
  }

  joining() {
    return this;
  }

  leaving() {
    return this;
  }
}

/** The one EventSource for the subscribed channels (sorted names), with envelope=1. */
class SseStream {
  constructor(connector, channels, lastEventId) {
    this.connector = connector;
    this.channels = channels;
    this.key = channels.join(',');
    this.lastEventId = lastEventId;
    this.source = null;
    this.events = new Set(); // event names the EventSource has listeners for
    this.attempts = 0;
    this.failedConnects = 0; // connects in a row that ended before the stream opened
    this.timer = null;
    this.generation = 0; // bumps on every (re)open: stale callbacks are ignored
    this.closed = false;
    this.status = 'connecting';
  }

  /** renewing: the token expired on an open stream; no visible state change while a new one is fetched. */
  async open({ renewing = false } = {}) {
    const generation = ++this.generation;
    clearTimeout(this.timer);
    this.timer = null;
    this.closeSource();
    if (!renewing) {
      this.setStatus('connecting');
    }
    const protectedChannels = this.channels.filter(isProtectedChannel);
    let token = null;
    if (protectedChannels.length) {
      try {
        token = await this.connector.tokenFor(protectedChannels);
      } catch (error) {
        if (generation !== this.generation || this.closed) {
          return;
        }
        this.connector.report(error);
        if (error.refused) {
          this.connector.refuse(error, protectedChannels); // the stream is reopened without them
        } else {
          this.retryLater();
        }
        return;
      }
      if (generation !== this.generation || this.closed) {
        return;
      }
    }
    this.openSource(generation, token);
  }

  url(token) {
    const { sseUrl } = this.connector.options;
    let url = sseUrl + (sseUrl.includes('?') ? '&' : '?') + 'channels=' + this.channels.map(encodeURIComponent).join(',') + '&envelope=1';
    if (token) {
      url += '&token=' + encodeURIComponent(token);
    }
    if (this.lastEventId !== null) {
      url += '&last_event_id=' + encodeURIComponent(this.lastEventId);
    }
    return url;
  }

  openSource(generation, token) {
    const url = this.url(token);
    const source = new this.connector.EventSource(url, { withCredentials: this.connector.options.withCredentials });
    this.source = source;
    this.events = new Set();
    let opened = false;
    source.onopen = () => {
      if (generation !== this.generation) {
        return;
      }
      opened = true;
      this.attempts = 0;
      this.failedConnects = 0;
      this.setStatus('connected');
      this.channels.forEach((name) => this.connector.channels[name]?.notifySubscribed());
    };
    source.onerror = async (event) => {
      if (generation !== this.generation) {
        return;
      }
      // Closed here so the connector alone decides when, and with which token and id, to retry.
      this.closeSource();
      let status = typeof event?.code === 'number' ? event.code : undefined;
      if (!opened) {
        this.failedConnects++;
      }
      if (status === undefined && token && this.failedConnects >= 2 && (this.failedConnects & (this.failedConnects - 1)) === 0) {
        // A browser's EventSource does not say why; the same request through fetch() does (after 2, 4, 8… failures).
        status = await this.connector.probe(url);
        if (generation !== this.generation || this.closed) {
          return;
        }
      }
      if (status === 401 || status === 403) {
        this.connector.forgetToken(this.channels.filter(isProtectedChannel)); // expired or revoked: fetch a new one first
      }
      const reason = `${opened ? 'lost' : 'refused'}${status ? ` (HTTP ${status})` : ''}${event?.message ? `: ${event.message}` : ''}`;
      this.connector.report(Object.assign(new Error(`scada SSE: stream ${this.key} ${reason}`), { status, channels: this.channels }));
      this.retryLater();
    };
    source.onmessage = (event) => this.deliver(generation, 'message', event);
    this.listenFor(this.connector.wantedEvents());
  }

  /** Listeners for event names not yet on the open EventSource (no reconnect needed). */
  listenFor(names) {
    const source = this.source;
    if (!source) {
      return;
    }
    for (const name of names) {
      if (this.events.has(name)) {
        continue;
      }
      this.events.add(name);
      source.addEventListener(name, (event) => {
        if (source !== this.source) {
          return;
        }
        if (name === 'overflow') {
          // The server ended this slow stream: reconnect at once, resuming after the last id.
          this.closeSource();
          this.attempts = 0;
          this.connector.report(Object.assign(new Error(`scada SSE: the server ended stream ${this.key} (overflow), resuming`), { overflow: parseJson(event.data) }));
          this.open();
        } else if (name === 'expired') {
          // The token this stream was opened with ran out: a new one, then resume after the last id.
          this.closeSource();
          this.attempts = 0;
          this.connector.forgetToken(this.channels.filter(isProtectedChannel));
          this.open({ renewing: true });
        } else if (name === 'gap') {
          this.rememberId(event);
          if (typeof this.connector.options.onGap === 'function') {
            this.connector.options.onGap({ channels: this.channels, data: parseJson(event.data) });
          }
        } else {
          this.deliver(this.generation, name, event);
        }
      });
    }
  }

  /** The envelope names the channels the event is on: each one's listeners get it, once. */
  deliver(generation, name, event) {
    if (generation !== this.generation) {
      return;
    }
    // No de-duplication by id: the sidecar resumes after Last-Event-ID (never inclusively), and an alarm that
    // overtook queued telemetry (SCADA_PRIORITY) carries the id of the last event sent in order, on purpose.
    const id = event.lastEventId || null;
    this.rememberId(event);
    const envelope = parseJson(event.data);
    if (envelope === null || typeof envelope !== 'object' || !Array.isArray(envelope.channels) || !('data' in envelope)) {
      this.connector.report(new Error(`scada SSE: event ${id ?? ''} "${name}" on stream ${this.key} is not an envelope {"channels":[…],"data":…}; dropped`));
      return;
    }
    for (const channelName of envelope.channels) {
      const channel = this.channels.includes(channelName) ? this.connector.channels[channelName] : undefined;
      channel?.dispatch(name, envelope.data);
    }
  }

  rememberId(event) {
    if (event.lastEventId) {
      this.lastEventId = event.lastEventId;
    }
  }

  retryLater() {
    if (this.closed) {
      return;
    }
    const { reconnectDelayMs, maxReconnectDelayMs } = this.connector.options;
    const base = Math.min(maxReconnectDelayMs, reconnectDelayMs * 2 ** this.attempts);
    this.attempts++;
    this.setStatus(this.attempts > 1 ? 'failed' : 'connecting');
    clearTimeout(this.timer);
    // Jitter, so a restarted sidecar is not hit by every browser in the same millisecond.
    this.timer = setTimeout(() => this.open(), base / 2 + Math.random() * (base / 2));
  }

  close() {
    this.closed = true;
    this.generation++;
    clearTimeout(this.timer);
    this.timer = null;
    this.closeSource();
  }

  closeSource() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  setStatus(status) {
    this.status = status;
    this.connector.updateStatus();
  }
}

export class ScadaSseConnector {
  constructor(options) {
    this.channels = {};
    this.stream = null; // the SseStream of every subscribed channel not refused
    this.tokens = new Map(); // protected channels, comma-joined → { token, expires }
    this.pending = false;
    this.closed = false;
    this.status = 'disconnected';
    this.statusCallbacks = new Set();
    this.setOptions(options);
    this.connect();
  }

  setOptions(options) {
    this.options = { ...DEFAULTS, ...options, auth: { headers: { ...(options.auth?.headers || {}) } } };
    const csrf = this.csrfToken();
    if (csrf) {
      this.options.auth.headers['X-CSRF-TOKEN'] = csrf;
    } else {
      const xsrf = xsrfCookie();
      if (xsrf) {
        this.options.auth.headers['X-XSRF-TOKEN'] = xsrf;
      }
    }
    if (this.options.bearerToken) {
      this.options.auth.headers.Authorization = 'Bearer ' + this.options.bearerToken;
    }
    const EventSourceClass = this.options.EventSource || globalThis.EventSource;
    if (typeof EventSourceClass !== 'function') {
      throw new Error('scada SSE: no EventSource: pass options.EventSource (e.g. the npm eventsource package outside browsers)');
    }
    this.EventSource = EventSourceClass;
    this.fetch = this.options.fetch || globalThis.fetch?.bind(globalThis);
  }

  /** Echo's lookup: window.Laravel.csrfToken, options.csrfToken, then <meta name="csrf-token">. */
  csrfToken() {
    if (typeof window !== 'undefined' && window.Laravel?.csrfToken) {
      return window.Laravel.csrfToken;
    }
    if (this.options.csrfToken) {
      return this.options.csrfToken;
    }
    if (typeof document !== 'undefined' && typeof document.querySelector === 'function') {
      return document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? null;
    }
    return null;
  }

  connect() {
    this.closed = false;
    this.changed();
  }

  listen(name, event, callback) {
    return this.channel(name).listen(event, callback);
  }

  channel(name) {
    return this.subscribe(name, ScadaSseChannel);
  }

  privateChannel(name) {
    return this.subscribe('private-' + name, ScadaSsePrivateChannel);
  }

  presenceChannel(name) {
    return this.subscribe('presence-' + name, ScadaSsePresenceChannel);
  }

  leave(name) {
    for (const channel of [name, 'private-' + name, 'private-encrypted-' + name, 'presence-' + name]) {
      this.leaveChannel(channel);
    }
  }

  leaveChannel(name) {
    if (this.channels[name]) {
      delete this.channels[name];
      this.changed();
    }
  }

  /** No socket over SSE: Echo then sends no X-Socket-ID (toOthers() excludes nobody). */
  socketId() {
    return undefined;
  }

  connectionStatus() {
    return this.status;
  }

  onConnectionChange(callback) {
    this.statusCallbacks.add(callback);
    return () => this.statusCallbacks.delete(callback);
  }

  disconnect() {
    this.closed = true;
    this.stream?.close();
    this.stream = null;
    this.updateStatus();
  }

  subscribe(name, ChannelClass) {
    if (!this.channels[name]) {
      this.channels[name] = new ChannelClass(this, name, this.options);
      this.changed();
    }
    return this.channels[name];
  }

  /** A new event name: listened for on the open stream (no reconnect needed). */
  eventNamesChanged() {
    this.stream?.listenFor(this.wantedEvents());
  }

  /** Changes in one tick (Echo.channel(a); Echo.private(b); .listen(…)) are applied once. */
  changed() {
    if (this.pending || this.closed) {
      return;
    }
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      if (!this.closed) {
        this.restream();
      }
    });
  }

  /** The stream for the current set of channels: kept when unchanged, else reopened after the last id seen. */
  restream() {
    const channels = Object.keys(this.channels).filter((name) => !this.channels[name].refused).sort();
    const key = channels.join(',');
    if (this.stream && this.stream.key === key) {
      return;
    }
    const lastEventId = this.stream?.lastEventId ?? null;
    this.stream?.close();
    this.stream = null;
    if (channels.length) {
      this.stream = new SseStream(this, channels, lastEventId);
      this.stream.open();
    }
    this.updateStatus();
  }

  wantedEvents() {
    const names = new Set(RESERVED_EVENTS);
    for (const channel of Object.values(this.channels)) {
      channel.eventNames().forEach((name) => names.add(name));
    }
    return names;
  }

  /** The HTTP status of a stream request (undefined when unreachable); the body is not read. */
  async probe(url) {
    if (typeof this.fetch !== 'function') {
      return undefined;
    }
    const abort = typeof AbortController === 'function' ? new AbortController() : null;
    try {
      const response = await this.fetch(url, { headers: { Accept: 'text/event-stream' }, credentials: this.options.withCredentials ? 'include' : 'same-origin', signal: abort?.signal });
      return response.status;
    } catch {
      return undefined;
    } finally {
      abort?.abort(); // a 200 would be a second stream: ended at once
    }
  }

  /** A valid token for exactly these channels, fetched when missing or about to expire. */
  async tokenFor(channels) {
    const key = channels.join(',');
    const cached = this.tokens.get(key);
    if (cached && cached.expires - this.options.tokenRefreshMarginSeconds > Date.now() / 1000) {
      return cached.token;
    }
    if (typeof this.fetch !== 'function') {
      throw new Error('scada SSE: no fetch() to request a token: pass options.fetch');
    }
    const body = new URLSearchParams();
    channels.forEach((name) => body.append('channels[]', name));
    let response;
    try {
      response = await this.fetch(this.options.tokenUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: {
          Accept: 'application/json',
          'Content-Type': 'application/x-www-form-urlencoded',
          'X-Requested-With': 'XMLHttpRequest',
          ...this.options.auth.headers,
        },
        body: body.toString(),
      });
    } catch (cause) {
      throw Object.assign(new Error(`scada SSE: token request to ${this.options.tokenUrl} failed: ${cause.message}`), { cause });
    }
    const json = await response.json().catch(() => ({}));
    if ([401, 403, 419].includes(response.status)) {
      throw Object.assign(new Error(`scada SSE: token refused (HTTP ${response.status})${json.message ? `: ${json.message}` : ''}`), {
        refused: true,
        status: response.status,
        channel: typeof json.channel === 'string' ? json.channel : null,
      });
    }
    if (!response.ok || typeof json.token !== 'string' || typeof json.expires !== 'number') {
      throw Object.assign(new Error(`scada SSE: bad token response from ${this.options.tokenUrl} (HTTP ${response.status})${json.message ? `: ${json.message}` : ''}`), {
        status: response.status,
      });
    }
    this.tokens.set(key, { token: json.token, expires: json.expires });
    return json.token;
  }

  forgetToken(channels) {
    this.tokens.delete(channels.join(','));
  }

  /** The refused channel (or, when the answer does not say, every protected one asked for) leaves its stream. */
  refuse(error, protectedChannels) {
    const refused = protectedChannels.includes(error.channel) ? [error.channel] : protectedChannels;
    for (const name of refused) {
      const channel = this.channels[name];
      if (channel) {
        channel.refused = true;
        channel.notifyError({ type: 'AuthError', status: error.status, error: error.message });
      }
    }
    this.changed();
  }

  report(error) {
    if (typeof this.options.onError === 'function') {
      this.options.onError(error);
    }
  }

  /** The stream's: connecting, connected, failed (keeps failing); disconnected without one. */
  updateStatus() {
    const status = this.stream ? this.stream.status : 'disconnected';
    if (this.status !== status) {
      this.status = status;
      this.statusCallbacks.forEach((callback) => callback(status));
    }
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text; // not JSON: handed over as sent
  }
}

function xsrfCookie() {
  if (typeof document === 'undefined' || typeof document.cookie !== 'string') {
    return null;
  }
  const match = document.cookie.match(/(?:^|;\s*)XSRF-TOKEN=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : null;
}

export default ScadaSseConnector;
