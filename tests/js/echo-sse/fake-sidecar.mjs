// A tiny stand-in for the sidecar's SSE listener and the app's token route,
// speaking the documented protocol: GET /sse?channels=a,b&envelope=1&token=…&last_event_id=…
// (text/event-stream with id/event/data, `event: gap`, `event: overflow`,
// comments), 401 without a token, 403 for a bad or expired one, `event: expired`
// and the end of the stream when the token it was opened with runs out; and
// POST /broadcasting/sse-token (channels[]) answering {token, expires}.
// With envelope=1 an event's data is {"channels":[…],"data":payload}: the
// requested channels it is on, in request order; an event on two of them is
// sent once. Without it, the bare payload.
// Each /sse connection follows the next step of a script, to drop, overflow
// or refuse on cue.
import crypto from 'node:crypto';
import http from 'node:http';

export const SECRET = 'node-test-sse-secret';

/** The token contract (tests/fixtures/sse-token-vectors.json). */
export function sign(expires, channels) {
  const prot = [...new Set(channels.filter((c) => c.startsWith('private-') || c.startsWith('presence-')))].sort();
  const mac = crypto.createHmac('sha256', SECRET).update(`scada-sse-v1\n${expires}\n${prot.join(',')}`).digest('hex');
  return `v1.${expires}.${mac}`;
}

export class FakeSidecar {
  /** ignoresEnvelope: a sidecar from before envelope=1, sending bare payloads whatever was asked. */
  constructor({ tokenTtl = 60, csrf = null, ignoresEnvelope = false } = {}) {
    this.tokenTtl = tokenTtl;
    this.csrf = csrf;
    this.ignoresEnvelope = ignoresEnvelope;
    this.events = []; // { id, channels, event, data }
    this.script = []; // per /sse connection: { count, after: 'drop'|'overflow'|'open', gap, delayMs } or { refuse: 403 }
    this.tokenScript = []; // per token request: { status, body }
    this.refusedChannels = new Set();
    this.connections = []; // what each /sse request asked for and got
    this.tokenRequests = [];
    this.nextId = 1;
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    for (const c of this.connections) {
      c.res?.destroy();
    }
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** channel: a name, or a list of names for an event broadcast on several. */
  add(channel, event, data) {
    const e = { id: this.nextId++, channels: [channel].flat(), event, data };
    this.events.push(e);
    return e;
  }

  /** A live event: stored, and written to every open stream carrying its channel. */
  publish(channel, event, data) {
    const e = this.add(channel, event, data);
    for (const c of this.openConnections()) {
      if (on(c, e).length) {
        c.res.write(frame(c, e));
        c.sent.push(e.id);
      }
    }
    return e;
  }

  /**
   * A priority event that overtakes events queued for each stream (SCADA_PRIORITY): the sidecar sends it with the id of
   * the last event that stream got in order, so a reconnect resumes before what it overtook.
   */
  overtake(channel, event, data) {
    for (const c of this.openConnections()) {
      const e = { id: c.sent.at(-1) ?? 0, channels: [channel].flat(), event, data };
      if (on(c, e).length) {
        c.res.write(frame(c, e));
      }
    }
  }

  openConnections() {
    return this.connections.filter((c) => c.res && !c.closed);
  }

  handle(req, res) {
    const url = new URL(req.url, this.base);
    if (url.pathname === '/broadcasting/sse-token' && req.method === 'POST') {
      return this.token(req, res);
    }
    if (url.pathname !== '/sse' || req.method !== 'GET') {
      res.writeHead(404).end('not found');
      return;
    }
    const channels = (url.searchParams.get('channels') || '').split(',').filter(Boolean);
    const token = url.searchParams.get('token');
    const lastEventId = url.searchParams.get('last_event_id') ?? req.headers['last-event-id'] ?? null;
    const envelope = url.searchParams.get('envelope') === '1' && !this.ignoresEnvelope;
    const c = { channels, token, lastEventId, envelope, status: 200, sent: [], closed: false, res: null };
    this.connections.push(c);
    const needsToken = channels.some((ch) => ch.startsWith('private-') || ch.startsWith('presence-'));
    if (needsToken) {
      const expires = Number((token || '').split('.')[1]);
      if (!token) {
        return refuse(c, res, 401, 'token missing');
      }
      if (sign(expires, channels) !== token) {
        return refuse(c, res, 403, 'token invalid');
      }
      if (expires < Date.now() / 1000) {
        return refuse(c, res, 403, 'token expired');
      }
    }
    const step = this.script.shift() ?? { after: 'open' };
    if (step.refuse) {
      return refuse(c, res, step.refuse, 'token expired');
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(': heartbeat\n\n');
    c.res = res;
    let expiry = null;
    res.on('close', () => {
      c.closed = true;
      clearTimeout(expiry);
    });
    if (needsToken) {
      // The sidecar ends a stream when its token runs out; the client comes back with a new one.
      const expires = Number(token.split('.')[1]);
      expiry = setTimeout(() => {
        c.expired = true;
        res.end('event: expired\ndata: {"reason":"token expired"}\n\n');
      }, Math.max(0, expires * 1000 - Date.now()));
    }
    let pending = this.events.filter((e) => on(c, e).length && (lastEventId === null || e.id > Number(lastEventId)));
    if (step.count !== undefined) {
      pending = pending.slice(0, step.count);
    }
    for (const e of pending) {
      res.write(frame(c, e));
      c.sent.push(e.id);
    }
    if (step.gap) {
      res.write(`event: gap\ndata: ${JSON.stringify(step.gap)}\n\n`);
    }
    const finish = () => {
      if (step.after === 'drop') {
        res.socket.destroy(); // the connection is lost mid-stream
      } else if (step.after === 'overflow') {
        res.end('event: overflow\ndata: {"reason":"client too slow"}\n\n');
      }
    };
    setTimeout(finish, step.delayMs ?? 0);
  }

  token(req, res) {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const channels = new URLSearchParams(body).getAll('channels[]');
      this.tokenRequests.push({ channels, headers: req.headers });
      const step = this.tokenScript.shift();
      if (step) {
        res.writeHead(step.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(step.body ?? {}));
        return;
      }
      if (this.csrf !== null && req.headers['x-csrf-token'] !== this.csrf) {
        res.writeHead(419, { 'Content-Type': 'application/json' }).end('{"message":"CSRF token mismatch."}');
        return;
      }
      const refused = channels.find((ch) => this.refusedChannels.has(ch));
      if (refused) {
        res.writeHead(403, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: `not allowed to subscribe to ${refused}`, channel: refused }));
        return;
      }
      const expires = Math.floor(Date.now() / 1000) + this.tokenTtl;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: sign(expires, channels), expires }));
    });
  }
}

/** The connection's requested channels the event is on, in request order. */
function on(c, e) {
  return c.channels.filter((ch) => e.channels.includes(ch));
}

function frame(c, e) {
  const data = c.envelope ? { channels: on(c, e), data: e.data } : e.data;
  return `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function refuse(c, res, status, reason) {
  c.status = status;
  res.writeHead(status, { 'Content-Type': 'text/plain' }).end(reason);
}

export async function waitFor(what, predicate, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
