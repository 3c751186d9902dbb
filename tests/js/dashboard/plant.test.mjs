// The whole path with real parts, in pusher mode: tests/demo/plant.php (the
// extension) → the sidecar (host-wide aggregation windows) → Sockudo (a
// Pusher-protocol server) → the dashboard page in headless chromium through
// laravel-echo and pusher-js. The page's files come from page-server.mjs.
// Also writes the README's screenshot when DASHBOARD_SCREENSHOT=path is set.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, waitForStats, watchedPage } from './browser.mjs';
import { PAGE_ROOT, PageSidecar } from './page-server.mjs';
import { waitFor } from '../echo-sse/fake-sidecar.mjs';

const ROOT = path.resolve(PAGE_ROOT, '../../..');
// As the PHP harness (tests/Support/Processes.php): SCADA_EXTENSION, else the release build.
const EXT = process.env.SCADA_EXTENSION || path.join(ROOT, 'target/release/libscada_broadcast.so');
const SIDECAR = process.env.SCADA_SIDECAR_BIN || path.join(ROOT, 'target/release/scada-sidecar');
// The sidecar's SSE listener (sidecar/src/sse) is being finished on another branch: its test runs once the binary has it.
const SOCKUDO = process.env.SOCKUDO_BIN || [path.join(os.homedir(), '.cargo/bin/sockudo'), '/usr/local/bin/sockudo'].find((p) => fs.existsSync(p));

const children = [];
let work;
let browser;

function start(name, cmd, args, env) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  child.name = name;
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  children.push(child);
  return child;
}

const logOf = (name) => fs.readFileSync(path.join(work, `${name}.log`), 'utf8');

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const portOpen = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1', () => {
    s.destroy();
    resolve(true);
  });
  s.on('error', () => resolve(false));
});

let sockudoPort;
let socket;
before(async () => {
  for (const [what, file] of [['the extension', EXT], ['the sidecar', SIDECAR], ['sockudo (tests/bin/install-deps.sh)', SOCKUDO]]) {
    assert.ok(file && fs.existsSync(file), `${what} is missing: ${file} (make build)`);
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-plant-'));
  sockudoPort = await freePort();
  start('sockudo', SOCKUDO, [], {
    SOCKUDO_DEFAULT_APP_ID: 'scada-app', SOCKUDO_DEFAULT_APP_KEY: 'scada-key', SOCKUDO_DEFAULT_APP_SECRET: 'scada-secret',
    HOST: '127.0.0.1', PORT: String(sockudoPort), RATE_LIMITER_ENABLED: 'false', METRICS_ENABLED: 'false', LOG_COLORS_ENABLED: 'false',
    SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND: '1000000',
  });
  const until = Date.now() + 20000;
  while (!(await portOpen(sockudoPort))) {
    assert.ok(Date.now() < until, `sockudo did not listen on ${sockudoPort}: ${logOf('sockudo').slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  socket = path.join(work, 'run/sidecar.sock');
  await startSidecar('sidecar', work);
  browser = await launch();
});

/** A sidecar delivering to Sockudo, its files under dir; extra: e.g. the SSE listener's settings. */
async function startSidecar(name, dir, extra = {}) {
  const sock = path.join(dir, 'run/sidecar.sock');
  const child = start(name, SIDECAR, [], {
    SCADA_SIDECAR_SOCKET: sock, SCADA_DATA_DIR: path.join(dir, 'data'), SCADA_REDIS_ENABLED: 'false', SCADA_LOG: 'info',
    PUSHER_APP_ID: 'scada-app', PUSHER_APP_KEY: 'scada-key', PUSHER_APP_SECRET: 'scada-secret',
    PUSHER_HOST: '127.0.0.1', PUSHER_PORT: String(sockudoPort), PUSHER_SCHEME: 'http', ...extra,
  });
  await waitFor(`the ${name} socket`, () => fs.existsSync(sock) || child.exitCode !== null, 15000);
  assert.equal(child.exitCode, null, logOf(name));
  return child;
}

after(async () => {
  await browser?.close();
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await c.exited;
    }
  }
  if (work && !process.env.KEEP_WORK) {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

/** The test app (tests/app, Laravel 8/10 layout) under `php -S`, with the dashboard route on, in pusher mode. */
async function laravelApp() {
  const port = await freePort();
  const app = path.join(ROOT, 'tests/app');
  const child = start('laravel', 'php', ['-d', `extension=${EXT}`, '-S', `127.0.0.1:${port}`, '-t', path.join(app, 'public'), path.join(app, 'public/index.php')], {
    APP_STORAGE: path.join(work, 'laravel-storage'), BROADCAST_DRIVER: 'scada', SCADA_SIDECAR_SOCKET: socket,
    PUSHER_APP_ID: 'scada-app', PUSHER_APP_KEY: 'scada-key', PUSHER_APP_SECRET: 'scada-secret',
    PUSHER_HOST: '127.0.0.1', PUSHER_PORT: String(sockudoPort), PUSHER_SCHEME: 'http',
    SCADA_DASHBOARD_ROUTE: '/scada/dashboard', SCADA_DASHBOARD_MODE: 'pusher',
  });
  const until = Date.now() + 10000;
  while (!(await portOpen(port))) {
    assert.ok(Date.now() < until && child.exitCode === null, `php -S did not listen: ${logOf('laravel')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `http://127.0.0.1:${port}`;
}

test('plant.php through the sidecar and Sockudo: the page from the Laravel route, in pusher mode, draws every tag from real windows and toasts real alarms', async (t) => {
  const base = await laravelApp();
  const { page, problems } = await watchedPage(browser, base);
  t.after(() => page.close());
  // The route embeds mode, key, host and port from the app's connection; Chromium's WebSocket to Sockudo
  // (a local origin on another port) is not an HTTP request and not intercepted.
  const response = await page.goto(`${base}/scada/dashboard`);
  // The route's Content-Security-Policy allows the page its own origin and Sockudo's ws:// origin; the page runs under it.
  assert.equal(response.headers()['content-security-policy'].match(/connect-src [^;]*/)?.[0], `connect-src 'self' ws://127.0.0.1:${sockudoPort}`);
  assert.deepEqual(await page.evaluate(() => { const c = window.scadaDashboard.config; return [c.mode, c.key, c.host, c.port, c.tls, c.channels]; }),
    ['pusher', 'scada-key', '127.0.0.1', sockudoPort, false, ['plant-live', 'alarms-plant']]);
  await waitForStats(page, 'connected to Sockudo', (s) => s.state === 'connected', 15000);

  // A compressed day of a minute, so tank levels cross their limits within seconds.
  const plant = start('plant', 'php', ['-d', `extension=${EXT}`, path.join(ROOT, 'tests/demo/plant.php'), '--seconds=12', '--rate=3000', '--window-ms=200', '--day-seconds=60'], {
    SCADA_SIDECAR_SOCKET: socket, SCADA_SPOOL_DIR: path.join(work, 'run/spool'),
  });
  const st = await waitForStats(page, '36 tags, windows and an alarm', (s) => Object.keys(s.series).length === 36 && s.windows >= 20 && s.alarms.length >= 1, 30000);
  assert.equal(st.state, 'connected');
  assert.deepEqual(st.ids, [], 'pusher-js events carry no ids');
  // Every tag has its unit and area from scada.tags, and min <= avg <= max in every window.
  for (const [tag, s] of Object.entries(st.series)) {
    assert.ok(s.unit !== '' && s.area !== '', `${tag}: unit "${s.unit}", area "${s.area}"`);
    for (let i = 0; i < s.min.length; i++) {
      assert.ok(s.min[i] <= s.avg[i] + 1e-9 && s.avg[i] <= s.max[i] + 1e-9, `${tag} window ${i}: ${s.min[i]} ${s.avg[i]} ${s.max[i]}`);
    }
  }
  assert.equal(st.series['TT-101'].unit, '°C');
  assert.equal(st.series['FT-202'].unit, 'Nm³/h');
  await page.waitForSelector('.toast');
  assert.equal(await page.$$eval('section.area h2', (hs) => hs.map((h) => h.textContent).join(',')), 'Reactor,Boiler,Tank farm,Motors,Cooling');
  assert.equal(await page.$$eval('.tag canvas', (c) => c.length), 36);

  const { code } = await plant.exited;
  const result = JSON.parse(logOf('plant').trim().split('\n').at(-1));
  assert.equal(code, 0, logOf('plant'));
  assert.equal(result.refused, 0);
  assert.ok(result.samples >= 30000, `${result.samples} samples`);
  // Every sample is in some window the page received (the last windows arrive after the plant stops).
  const done = await waitForStats(page, 'every sample and alarm', (s) => s.samples >= result.samples && s.alarms.length >= result.alarms, 15000);
  assert.equal(done.samples, result.samples);
  assert.equal(done.alarms.length, result.alarms);

  if (process.env.DASHBOARD_SCREENSHOT) {
    await page.setViewport({ width: 1400, height: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
  }
  assert.deepEqual(problems.foreign, []);
  assert.deepEqual(problems.page, []);
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.failed, []);
});

test('plant.php through the sidecar\'s SSE listener, restarted mid-run: the page resumes and receives every window once', async (t) => {
  const dir = path.join(work, 'sse');
  fs.mkdirSync(dir, { recursive: true });
  const ssePort = await freePort();
  const sse = { SCADA_SSE_ADDR: `127.0.0.1:${ssePort}`, SCADA_SSE_CORS: '*' };
  let sidecar = await startSidecar('sidecar-sse', dir, sse);
  const files = await new PageSidecar().start();
  t.after(() => files.stop());
  const sseOrigin = `http://127.0.0.1:${ssePort}`;
  const { page, problems } = await watchedPage(browser, files.base, { alsoAllowed: [sseOrigin] });
  t.after(() => page.close());
  // The listener is on another origin: the page takes it only from an embedded config that lists it (as the route embeds it).
  files.embedded = { mode: 'sse', sseUrl: `${sseOrigin}/sse`, allowedOrigins: [sseOrigin], channels: ['plant-live', 'alarms-plant'] };
  await page.goto(`${files.base}/dashboard/index.html`);
  await waitForStats(page, 'connected to the SSE listener', (s) => s.state === 'connected', 15000);

  const plant = start('plant-sse', 'php', ['-d', `extension=${EXT}`, path.join(ROOT, 'tests/demo/plant.php'), '--seconds=12', '--rate=3000', '--window-ms=200', '--day-seconds=60'], {
    SCADA_SIDECAR_SOCKET: path.join(dir, 'run/sidecar.sock'), SCADA_SPOOL_DIR: path.join(dir, 'run/spool'),
  });
  await waitForStats(page, 'windows', (s) => s.windows >= 10, 15000);
  // A restart of the sidecar (graceful, same journal): PHP spools meanwhile, the page reconnects with its last id.
  sidecar.kill('SIGTERM');
  await sidecar.exited;
  sidecar = await startSidecar('sidecar-sse-2', dir, sse);
  const { code } = await plant.exited;
  const result = JSON.parse(logOf('plant-sse').trim().split('\n').at(-1));
  assert.equal(code, 0, logOf('plant-sse'));
  const st = await waitForStats(page, 'every sample and alarm', (s) => s.samples >= result.samples && s.alarms.length >= result.alarms, 20000);
  assert.equal(st.samples, result.samples, 'every sample in exactly one window the page received');
  assert.equal(st.alarms.length, result.alarms);
  assert.equal(st.duplicateIds, 0);
  const ids = st.ids.map(BigInt);
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'ids only grow');
  assert.ok(st.states.includes('reconnecting') && st.state === 'connected', st.states.join(' '));
  assert.equal(Object.values(st.series).filter((s) => s.unit !== '').length, 36);
  assert.deepEqual(problems.foreign, []);
  assert.deepEqual(problems.page, []);
  const cut = (m) => m.includes(`${sseOrigin}/sse?`);
  assert.deepEqual(problems.console.filter((m) => !cut(m)), []);
  assert.deepEqual(problems.failed.filter((m) => !cut(m)), []);
});
