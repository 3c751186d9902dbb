// Issue 15, deliverable 5: what the dashboard costs the browser's main thread.
// The same input, 10k samples/s of --tags tags from PHP (tests/demo/feed.php,
// broadcastData through the extension), reaches the page served by a real
// sidecar over SSE (three variants, the last a baseline):
//   feed=windows  a throttle rule aggregates the channel into 100 ms windows
//                 (10 events/s for the page, every sample counted in them);
//   feed=raw      no rule: every sample is an event for the page;
//   feed=idle     the same page with its cards (the tag list and one sample
//                 per tag), then no input: the baseline (the frame counter,
//                 timers, the status bar).
// For each, Chromium's own counters (CDP Performance.getMetrics, what
// page.metrics() reads: TaskDuration, ScriptDuration, LayoutDuration,
// RecalcStyleDuration, TaskOtherDuration, all wall-clock time inside the main
// thread's tasks; ThreadTime, that thread's CPU time; ProcessTime, the whole
// renderer's CPU) over --seconds after a warm-up give milliseconds per
// second; a requestAnimationFrame counter gives frames/s; the page's stats()
// what it received. One line per variant:
//   dashboard feed=windows input=9999/s tags=36 busy_ms_per_s=… script_ms_per_s=… layout_ms_per_s=… style_ms_per_s=… other_ms_per_s=…
//     main_thread_cpu_ms_per_s=… renderer_cpu_ms_per_s=… fps=… received_events/s=… received_samples/s=… overflows=… refused=… heap_mb=…
//
//   node tests/bench/dashboard.mjs [--rate=10000] [--tags=36] [--seconds=10] [--warmup=3] [--variants=idle,windows,raw] [--trace=N]
// --trace=N adds, per variant, N s under Chromium's timeline tracing: a second
// line with the main thread's time per second by trace event (RunTask is the
// total; Commit is the compositor commit, v8.callFunction script).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../js/dashboard/browser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXT = process.env.SCADA_EXTENSION || path.join(ROOT, 'target/release/libscada_broadcast.so');
const SIDECAR = process.env.SCADA_SIDECAR_BIN || path.join(ROOT, 'target/release/scada-sidecar');

const opts = { rate: 10000, tags: 36, seconds: 10, warmup: 3, variants: 'idle,windows,raw', trace: 0 };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z]+)=(.+)$/.exec(arg);
  if (!m || !(m[1] in opts)) {
    console.error(`dashboard.mjs: unknown argument ${arg}\nusage: node tests/bench/dashboard.mjs [--rate=N] [--tags=N] [--seconds=N] [--warmup=N] [--variants=idle,windows,raw] [--trace=N]`);
    process.exit(2);
  }
  opts[m[1]] = m[1] === 'variants' ? m[2] : Number(m[2]);
  if (m[1] !== 'variants' && !(opts[m[1]] > 0 || (m[1] === 'trace' && opts.trace === 0))) {
    console.error(`dashboard.mjs: --${m[1]} must be a positive number, got ${m[2]}`);
    process.exit(2);
  }
}
const unknown = opts.variants.split(',').filter((v) => !['idle', 'windows', 'raw'].includes(v));
if (unknown.length) {
  console.error(`dashboard.mjs: unknown variant ${unknown.join(', ')} (idle, windows, raw)`);
  process.exit(2);
}
for (const [what, file] of [['the extension', EXT], ['the sidecar', SIDECAR]]) {
  if (!fs.existsSync(file)) {
    console.error(`dashboard.mjs: ${what} is missing: ${file} (make build)`);
    process.exit(1);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function start(work, name, cmd, args, env) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w');
  // Only this run's settings reach the sidecar and PHP: none of the caller's REDIS_*, PUSHER_*, SCADA_* (another target, another socket).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REDIS_|PUSHER_|SCADA_)/.test(k)));
  const child = spawn(cmd, args, { env: { ...inherited, ...env }, stdio: ['ignore', log, log] });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

const status = (socketPath) => new Promise((resolve, reject) => {
  http.get({ socketPath, path: '/status' }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
  }).on('error', reject);
});

async function variant(browser, feed) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `bench-dashboard-${feed}-`));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const socket = path.join(work, 'run/sidecar.sock');
  const env = { SCADA_SIDECAR_SOCKET: socket, SCADA_DATA_DIR: path.join(work, 'data'), SCADA_REDIS_ENABLED: 'false', SCADA_LOG: 'warn', SCADA_SSE_ADDR: `127.0.0.1:${port}` };
  if (feed === 'windows') {
    env.SCADA_THROTTLE = 'plant-live=100:aggregate';
  }
  const sidecar = start(work, 'sidecar', SIDECAR, [], env);
  let producer;
  let page;
  try {
    for (let end = Date.now() + 20000; !fs.existsSync(socket); await sleep(50)) {
      if (Date.now() > end || sidecar.exitCode !== null) {
        throw new Error(`the sidecar did not start: ${fs.readFileSync(path.join(work, 'sidecar.log'), 'utf8')}`);
      }
    }
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(`${base}/dashboard/?channels=plant-live`);
    await page.waitForFunction(() => window.scadaDashboard?.stats().state === 'connected', { timeout: 20000 });
    await page.evaluate(() => {
      window.benchFrames = 0;
      const frame = () => {
        window.benchFrames++;
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    });
    const input = feed === 'idle' ? [`--count=${opts.tags}`, '--rate=0'] : [`--rate=${opts.rate}`, `--seconds=${opts.warmup + opts.seconds + opts.trace + 1}`];
    producer = start(work, 'feed', 'php', ['-d', `extension=${EXT}`, path.join(ROOT, 'tests/demo/feed.php'), '--channel=plant-live',
      `--tags=${opts.tags}`, ...input], { SCADA_SIDECAR_SOCKET: socket, SCADA_SPOOL_DIR: path.join(work, 'run/spool') });
    await sleep(opts.warmup * 1000);
    const counts = () => page.evaluate(() => {
      const s = window.scadaDashboard.stats();
      return { events: s.events, samples: s.samples, frames: window.benchFrames, at: performance.now() };
    });
    const cdp = await page.createCDPSession();
    await cdp.send('Performance.enable');
    const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    const c0 = await counts();
    const m0 = await metrics();
    await sleep(opts.seconds * 1000);
    const m1 = await metrics();
    const c1 = await counts();
    // --trace=N: then N more seconds under Chromium's timeline tracing (slower), the main thread's events by total time.
    let breakdown = '';
    if (opts.trace > 0) {
      const file = path.join(work, 'trace.json');
      await page.tracing.start({ path: file, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'toplevel'] });
      await sleep(opts.trace * 1000);
      await page.tracing.stop();
      const events = JSON.parse(fs.readFileSync(file, 'utf8')).traceEvents;
      const main = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
      const total = {};
      for (const e of events) {
        if (e.ph === 'X' && e.dur && main.has(`${e.pid}:${e.tid}`)) {
          total[e.name] = (total[e.name] ?? 0) + e.dur / 1000;
        }
      }
      const wanted = ['RunTask', 'Commit', 'v8.callFunction', 'FunctionCall', 'FireAnimationFrame', 'EventDispatch', 'Layout', 'Paint', 'PrePaint', 'Layerize', 'UpdateLayoutTree', 'MinorGC', 'MajorGC'];
      breakdown = `\ndashboard feed=${feed} trace_ms_per_s ` + wanted.map((n) => `${n}=${((total[n] ?? 0) / opts.trace).toFixed(1)}`).join(' ');
    }
    const { code } = await producer.exited;
    const out = fs.readFileSync(path.join(work, 'feed.log'), 'utf8').trim();
    if (code !== 0) {
      throw new Error(`feed.php failed (${code}): ${out}`);
    }
    const sent = feed === 'idle' ? { rate: 0, refused: JSON.parse(out.split('\n').at(-1)).refused } : JSON.parse(out.split('\n').at(-1));
    const secs = m1.Timestamp - m0.Timestamp;
    const per = (k) => (((m1[k] - m0[k]) * 1000) / secs).toFixed(1);
    const rate = (k) => Math.round(((c1[k] - c0[k]) * 1000) / (c1.at - c0.at));
    const sse = (await status(path.join(work, 'run/status.sock'))).sse ?? {};
    console.log(`dashboard feed=${feed} input=${sent.rate}/s tags=${opts.tags} busy_ms_per_s=${per('TaskDuration')} script_ms_per_s=${per('ScriptDuration')} `
      + `layout_ms_per_s=${per('LayoutDuration')} style_ms_per_s=${per('RecalcStyleDuration')} other_ms_per_s=${per('TaskOtherDuration')} `
      + `main_thread_cpu_ms_per_s=${per('ThreadTime')} renderer_cpu_ms_per_s=${per('ProcessTime')} fps=${rate('frames')} `
      + `received_events/s=${rate('events')} received_samples/s=${rate('samples')} overflows=${sse.overflows ?? '?'} refused=${sent.refused} `
      + `heap_mb=${(m1.JSHeapUsedSize / 1048576).toFixed(1)}${breakdown}`);
  } finally {
    await page?.close();
    producer?.kill('SIGTERM');
    sidecar.kill('SIGTERM');
    await sidecar.exited;
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const browser = await launch();
try {
  for (const feed of opts.variants.split(',')) {
    await variant(browser, feed);
  }
} finally {
  await browser.close();
}
