// Issue 15: an alarm must reach the operator even when the page is buried in
// telemetry. All real parts: PHP (tests/demo/feed.php through the extension)
// → a real sidecar process (SSE only, no Redis) → the dashboard it serves at
// /dashboard/, in headless chromium. PHP sends tens of thousands of raw
// telemetry events flat out, far faster than a browser reads them: the page's
// queue in the sidecar overflows, the connector reconnects with its last id
// and the sidecar replays the backlog from the journal; one alarm follows the
// last sample. The toast must appear, every event id in the journal for the
// page's channels must reach the page exactly once and in order, and the page
// must show no console error and no failed request.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { EventSource } from 'eventsource'; // tests/js/node_modules
import { launch, waitForStats, watchedPage } from './browser.mjs';
import { PAGE_ROOT } from './page-server.mjs';

const ROOT = path.resolve(PAGE_ROOT, '../../..');
const EXT = process.env.SCADA_EXTENSION || path.join(ROOT, 'target/release/libscada_broadcast.so');
const SIDECAR = process.env.SCADA_SIDECAR_BIN || path.join(ROOT, 'target/release/scada-sidecar');
// Below the page's 100,000 ids kept by stats(), and about 5.6 MB in the extension's buffer (8 MiB, ~187 bytes an
// event), so no call is refused even if its writer stalls: with 80,000, one run had 35,013 calls refused, the alarm
// among them (the default overflow policy, reject, for every channel).
const SAMPLES = Number(process.env.BACKLOG_SAMPLES || 30000);
const CHANNELS = ['plant-raw', 'alarms-plant'];

const children = [];
let work;
let browser;
let base;
let statusSocket;

function start(name, cmd, args, env) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
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

async function until(what, predicate, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    assert.ok(Date.now() < end, `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The sidecar's /status (JSON) over its Unix socket. */
const status = () => new Promise((resolve, reject) => {
  http.get({ socketPath: statusSocket, path: '/status' }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => resolve(JSON.parse(body)));
  }).on('error', reject);
});

before(async () => {
  for (const [what, file] of [['the extension', EXT], ['the sidecar', SIDECAR]]) {
    assert.ok(fs.existsSync(file), `${what} is missing: ${file} (make build)`);
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-backlog-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const socket = path.join(work, 'run/sidecar.sock');
  statusSocket = path.join(work, 'run/status.sock');
  const sidecar = start('sidecar', SIDECAR, [], {
    SCADA_SIDECAR_SOCKET: socket, SCADA_DATA_DIR: path.join(work, 'data'), SCADA_REDIS_ENABLED: 'false', SCADA_LOG: 'info',
    SCADA_SSE_ADDR: `127.0.0.1:${port}`,
  });
  await until('the sidecar socket', () => fs.existsSync(socket) || sidecar.exitCode !== null, 20000);
  assert.equal(sidecar.exitCode, null, logOf('sidecar'));
  browser = await launch();
});

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

/** Every event id the journal holds for `channels` after `lastId`, until it has given the first scada.alarm and `samples` telemetry events (a plain EventSource, resuming from the journal; the stop condition holds whichever comes first). */
function journalIds(channels, lastId, samples, timeoutMs) {
  return new Promise((resolve, reject) => {
    const ids = [];
    const es = new EventSource(`${base}/sse?channels=${channels.join(',')}&last_event_id=${lastId}`);
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`the journal replay did not reach the alarm within ${timeoutMs} ms (${ids.length} ids)`));
    }, timeoutMs);
    const done = (result, error) => {
      clearTimeout(timer);
      es.close();
      error ? reject(error) : resolve(result);
    };
    let telemetry = 0;
    let alarm = null;
    const check = () => alarm && telemetry >= samples && done({ ids, ...alarm });
    es.addEventListener('scada.tags', (e) => ids.push(e.lastEventId));
    es.addEventListener('scada.data.received', (e) => {
      ids.push(e.lastEventId);
      telemetry++;
      check();
    });
    es.addEventListener('scada.alarm', (e) => {
      ids.push(e.lastEventId);
      alarm ??= { alarmId: e.lastEventId, alarm: JSON.parse(e.data) };
      check();
    });
    es.addEventListener('gap', (e) => done(null, new Error(`gap in the journal replay: ${e.data}`)));
  });
}

test(`an alarm sent after ${SAMPLES} raw telemetry events sent flat out reaches the page as a toast, with every event id once and in order`, async (t) => {
  const { page, problems } = await watchedPage(browser, base);
  t.after(() => page.close());
  await page.goto(`${base}/dashboard/?channels=${CHANNELS.join(',')}`);
  await waitForStats(page, 'connected to the sidecar', (s) => s.state === 'connected', 20000);

  const feed = start('feed', 'php', ['-d', `extension=${EXT}`, path.join(ROOT, 'tests/demo/feed.php'),
    '--channel=plant-raw', '--tags=36', '--rate=0', `--count=${SAMPLES}`, '--alarm-channel=alarms-plant'], {
    SCADA_SIDECAR_SOCKET: path.join(work, 'run/sidecar.sock'), SCADA_SPOOL_DIR: path.join(work, 'run/spool'),
  });
  const { code } = await feed.exited;
  assert.equal(code, 0, logOf('feed'));
  const sent = JSON.parse(logOf('feed').trim().split('\n').at(-1));
  assert.deepEqual([sent.samples, sent.refused, sent.alarms], [SAMPLES, 0, 1], `every call accepted (the buffer holds them all): ${logOf('feed')}`);
  t.diagnostic(`feed.php: ${sent.samples} samples in ${sent.seconds} s (${sent.rate}/s), then the alarm`);

  // The toast, as the operator sees it (it stays toastMs, 8 s: waitForSelector watches the DOM as it changes).
  // Today the alarm waits behind the whole backlog (one journal, one order), so the wait is generous for CI on 2
  // cores. With the priority lane for alarm channels (SCADA_PRIORITY=alarms-*, not merged yet) the alarm overtakes
  // the backlog: then this test will also require the alarm to be shown before the last telemetry event
  // (stats().ids: the alarm's id ahead of the backlog's last ids) and within a few seconds of feed.php's exit.
  const toast = await page.waitForSelector('.toast.toast-high', { timeout: 180000 });
  const [title, body] = await toast.$$eval('strong, span', (els) => els.map((e) => e.textContent));
  assert.equal(title, 'T-001 high');
  assert.match(body, new RegExp(`^T-001 above 90 °C after ${SAMPLES} samples \\(\\d\\d:\\d\\d:\\d\\d\\)$`));

  const st = await waitForStats(page, 'every sample and the alarm', (s) => s.samples >= SAMPLES && s.alarms.length >= 1, 180000);
  assert.equal(st.samples, SAMPLES, 'every sample shown once');
  assert.equal(st.alarms.length, 1);
  assert.equal(st.alarms[0].message, `T-001 above 90 °C after ${SAMPLES} samples`);
  assert.equal(st.duplicateIds, 0);
  assert.deepEqual(st.gaps, []);
  assert.equal(st.state, 'connected');

  // The oracle: what the journal holds for the page's channels after the page's first event (the tag list,
  // received live before the burst), read by a plain EventSource. The page has each of those ids once, in order.
  assert.equal(st.events, SAMPLES + 2, 'the tag list, every sample, the alarm');
  const journal = await journalIds(CHANNELS, st.ids[0], SAMPLES, 120000);
  assert.equal(journal.ids.length, SAMPLES + 1);
  assert.deepEqual(st.ids.slice(1), journal.ids, 'the page got every id the journal holds for its channels, once, in order');
  assert.ok(st.ids.includes(journal.alarmId), `the alarm's id ${journal.alarmId} reached the page`);
  assert.equal(journal.alarm.message, st.alarms[0].message);

  const sse = (await status()).sse;
  t.diagnostic(`page states ${st.states.join(' → ')}; transport errors ${JSON.stringify(st.errors)}; sidecar sse: ${JSON.stringify(sse)}`);
  assert.deepEqual(problems.foreign, []);
  assert.deepEqual(problems.page, []);
  // What a resumption leaves in the browser's log, and nothing else. After `event: overflow` the connector closes
  // its EventSource (Chromium reports that request as net::ERR_ABORTED) and reconnects with its last id.
  // An overflowed stream's connection takes no further request (sidecar/src/sse/server.rs): the resumed stream goes on
  // a new connection and is never cut by the overflowed one's grace (overflow_grace_ms). That showed as
  // net::ERR_INCOMPLETE_CHUNKED_ENCODING and one more resumption ("lost") before it was fixed: none is allowed.
  const resumed = st.errors.filter((e) => e.endsWith('(overflow), resuming')).length;
  const lost = st.errors.filter((e) => e.endsWith(' lost')).length;
  const stream = (m) => m.includes(`${base}/sse?`);
  const aborted = (m) => stream(m) && m.endsWith('net::ERR_ABORTED');
  assert.equal(lost, 0, `no stream is lost: ${st.errors.join('; ')}`);
  assert.ok(problems.failed.filter(aborted).length <= resumed, problems.failed.join('\n'));
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.failed.filter((m) => !aborted(m)), []);
  t.diagnostic(`resumed after overflow ${resumed}; requests aborted by the connector ${problems.failed.filter(aborted).length}`);
});
