// The fake sidecar of the Echo connector's tests (../echo-sse/fake-sidecar.mjs:
// GET /sse, the token route, scripted drops) that also serves the dashboard's
// files under /dashboard/, so the page and its stream share one origin.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeSidecar } from '../echo-sse/fake-sidecar.mjs';

export const PAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../php/resources/dashboard');

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.txt': 'text/plain; charset=utf-8' };

export class PageSidecar extends FakeSidecar {
  constructor(options) {
    super(options);
    this.served = []; // [status, path] of every file request
    this.embedded = null; // a config to embed in index.html, as Laravel's route does
  }

  handle(req, res) {
    const url = new URL(req.url, this.base);
    if (!url.pathname.startsWith('/dashboard/')) {
      return super.handle(req, res);
    }
    const rel = decodeURIComponent(url.pathname.slice('/dashboard/'.length)) || 'index.html';
    const file = path.resolve(PAGE_ROOT, rel);
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      this.served.push([status, url.pathname]);
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
    };
    if (!file.startsWith(PAGE_ROOT + path.sep)) {
      return send(403, 'outside the dashboard folder');
    }
    fs.readFile(file).then(
      (body) => {
        if (this.embedded !== null && rel === 'index.html') {
          const tag = '<script type="application/json" id="scada-dashboard-config">';
          body = body.toString('utf8').replace(`${tag}{}</script>`, `${tag}${JSON.stringify(this.embedded).replace(/</g, '\\u003c')}</script>`);
        }
        send(200, body, TYPES[path.extname(file)] ?? 'application/octet-stream');
      },
      () => send(404, 'not found'),
    );
  }
}

/** A window of broadcastAggregatedData as the sidecar sends it (core/src/aggregate.rs, sidecar/src/throttle). */
export function windowPayload(channel, endMs, series, throttleMs = 200) {
  const data = {};
  let samples = 0;
  for (const [tag, values] of Object.entries(series)) {
    const sum = values.reduce((a, b) => a + b, 0);
    data[tag] = { count: values.length, sum, min: Math.min(...values), max: Math.max(...values), average: sum / values.length, first: values[0], last: values.at(-1) };
    samples += values.length;
  }
  const iso = (ms) => new Date(ms).toISOString().replace('Z', '123Z'); // microseconds, as the sidecar writes them
  return { data, timestamp: iso(endMs), channel, window: { start: iso(endMs - throttleMs), end: iso(endMs), throttle_ms: throttleMs, samples } };
}
