// Issue 14, deliverable 7: the sidecar's SSE listener with many browsers.
// --clients EventSource clients (npm `eventsource`, spread over --procs node
// processes, tests/bench/sse-clients.mjs) on --channels channels (each client
// on --per of them) that get --updates events/s each (tests/bench/ticker.php
// through the extension, the producer's clock in the payload), while a
// firehose of --firehose samples/s (tests/demo/feed.php, broadcastData) runs
// into 10 other channels that a throttle rule aggregates into 100 ms windows.
// Over --seconds after a warm-up: deliveries/s against expected, latency
// (producer clock → receipt), the sidecar's CPU (utime + stime from
// /proc/<pid>/stat) and RSS (/proc/<pid>/status). One line:
//   sse clients=1000 channels=10 per_client=1 delivered/s=… expected/s=… p50_ms=… p99_ms=… max_ms=… sidecar_cpu_cores=… sidecar_rss_mb=… ticks/s=… firehose=…/s refused=… missed=… client_errors=… overflows=…
//
//   node tests/bench/sse.mjs [--clients=1000] [--procs=4] [--channels=10] [--per=1] [--updates=10] [--firehose=10000] [--seconds=15] [--warmup=3]
import { execFileSync, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const EXT = process.env.SCADA_EXTENSION || path.join(ROOT, 'target/release/libscada_broadcast.so');
const SIDECAR = process.env.SCADA_SIDECAR_BIN || path.join(ROOT, 'target/release/scada-sidecar');

const opts = { clients: 1000, procs: 4, channels: 10, per: 1, updates: 10, firehose: 10000, seconds: 15, warmup: 3 };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z]+)=(\d+)$/.exec(arg);
  if (!m || !(m[1] in opts) || (Number(m[2]) < 1 && m[1] !== 'firehose')) {
    console.error(`sse.mjs: bad argument ${arg}\nusage: node tests/bench/sse.mjs [--clients=N] [--procs=N] [--channels=N] [--per=N] [--updates=N/s] [--firehose=N samples/s, 0 = none] [--seconds=N] [--warmup=N]`);
    process.exit(2);
  }
  opts[m[1]] = Number(m[2]);
}
if (opts.per > opts.channels) {
  console.error('sse.mjs: --per cannot exceed --channels');
  process.exit(2);
}
for (const [what, file] of [['the extension', EXT], ['the sidecar', SIDECAR]]) {
  if (!fs.existsSync(file)) {
    console.error(`sse.mjs: ${what} is missing: ${file} (make build)`);
    process.exit(1);
  }
}
// Each client is one socket here and one in the sidecar (which inherits this limit).
const fdLimit = Number(execFileSync('bash', ['-c', 'ulimit -n']).toString().trim());
if (fdLimit < opts.clients + 200) {
  console.error(`sse.mjs: ulimit -n is ${fdLimit}; ${opts.clients} clients need at least ${opts.clients + 200} (ulimit -n ${opts.clients * 2})`);
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sse-'));
const children = [];

function start(name, cmd, args, env) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w');
  // Only this run's settings reach the sidecar and PHP: none of the caller's REDIS_*, PUSHER_*, SCADA_* (another target, another socket).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REDIS_|PUSHER_|SCADA_)/.test(k)));
  const child = spawn(cmd, args, { env: { ...inherited, ...env }, stdio: ['ignore', log, log] });
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

const status = (socketPath) => new Promise((resolve, reject) => {
  http.get({ socketPath, path: '/status' }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
  }).on('error', reject);
});

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
function cpuSeconds(pid) {
  // Fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th.
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}
const rssMb = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

const workers = [];
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const socket = path.join(work, 'run/sidecar.sock');
  // Every client comes from 127.0.0.1: the per-address limit (256 by default) must let them all in.
  fs.writeFileSync(path.join(work, 'sidecar.toml'), `[sse]\naddr = "127.0.0.1:${port}"\nmax_connections_per_client = ${opts.clients + 100}\n`);
  const sidecar = start('sidecar', SIDECAR, ['--config', path.join(work, 'sidecar.toml')], {
    SCADA_SIDECAR_SOCKET: socket, SCADA_DATA_DIR: path.join(work, 'data'), SCADA_REDIS_ENABLED: 'false', SCADA_LOG: 'warn',
    SCADA_THROTTLE: 'firehose-*=100:aggregate',
  });
  for (let end = Date.now() + 20000; !fs.existsSync(socket); await sleep(50)) {
    if (Date.now() > end || sidecar.exitCode !== null) {
      throw new Error(`the sidecar did not start: ${logOf('sidecar')}`);
    }
  }
  const statusSocket = path.join(work, 'run/status.sock');

  // The clients, connected before anything is sent.
  const state = [];
  for (let p = 0; p < opts.procs; p++) {
    const first = Math.floor((p * opts.clients) / opts.procs);
    const count = Math.floor(((p + 1) * opts.clients) / opts.procs) - first;
    const w = fork(path.join(HERE, 'sse-clients.mjs'), [base, count, first, opts.per, opts.channels], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    state[p] = { open: 0, errors: 0 };
    w.on('message', (m) => { state[p] = m; });
    w.result = new Promise((resolve) => w.on('message', (m) => m.done && resolve(m)));
    w.exited = new Promise((resolve) => w.on('exit', resolve));
    workers.push(w);
  }
  for (let end = Date.now() + 60000; ; await sleep(200)) {
    const open = state.reduce((a, s) => a + s.open, 0);
    const connected = (await status(statusSocket)).sse?.clients_connected;
    if (open >= opts.clients && connected >= opts.clients) {
      break;
    }
    if (Date.now() > end) {
      throw new Error(`only ${open} of ${opts.clients} clients opened (sidecar: ${connected} connected; errors ${state.reduce((a, s) => a + s.errors, 0)})`);
    }
  }

  const run = opts.warmup + opts.seconds + 2;
  const phpEnv = { SCADA_SIDECAR_SOCKET: socket, SCADA_SPOOL_DIR: path.join(work, 'run/spool') };
  const ticker = start('ticker', 'php', ['-d', `extension=${EXT}`, path.join(HERE, 'ticker.php'), opts.channels, opts.updates, run], phpEnv);
  const firehose = opts.firehose > 0
    ? start('firehose', 'php', ['-d', `extension=${EXT}`, path.join(ROOT, 'tests/demo/feed.php'), '--channel=firehose', '--channels=10', '--tags=20',
      `--rate=${opts.firehose}`, `--seconds=${run}`], phpEnv)
    : null;
  await sleep(opts.warmup * 1000);

  workers.forEach((w) => w.send('start'));
  const cpu0 = cpuSeconds(sidecar.pid);
  const t0 = performance.now();
  await sleep(opts.seconds * 1000);
  workers.forEach((w) => w.send('stop'));
  const cpu1 = cpuSeconds(sidecar.pid);
  const t1 = performance.now();
  const rss = rssMb(sidecar.pid);
  const results = await Promise.all(workers.map((w) => w.result));

  for (const [name, child] of [['ticker', ticker], ['firehose', firehose]]) {
    if (child && (await child.exited).code !== 0) {
      throw new Error(`${name} failed: ${logOf(name)}`);
    }
  }
  const tick = JSON.parse(logOf('ticker').trim().split('\n').at(-1));
  const fire = firehose ? JSON.parse(logOf('firehose').trim().split('\n').at(-1)) : { rate: 0, refused: 0 };
  const secs = (t1 - t0) / 1000;
  const received = results.reduce((a, r) => a + r.received, 0);
  const errors = results.reduce((a, r) => a + r.errors, 0);
  const missed = results.reduce((a, r) => a + r.missed, 0);
  const lat = new Float64Array(results.reduce((a, r) => a + r.latencies.length, 0));
  let i = 0;
  for (const r of results) {
    for (const l of r.latencies) {
      lat[i++] = l;
    }
  }
  lat.sort();
  const sse = (await status(statusSocket)).sse ?? {};
  const expected = opts.clients * opts.per * opts.updates;
  console.log(`sse clients=${opts.clients} channels=${opts.channels} per_client=${opts.per} delivered/s=${Math.round(received / secs)} expected/s=${expected} `
    + `p50_ms=${percentile(lat, 50).toFixed(2)} p99_ms=${percentile(lat, 99).toFixed(2)} max_ms=${lat.length ? lat[lat.length - 1].toFixed(1) : NaN} `
    + `sidecar_cpu_cores=${((cpu1 - cpu0) / secs).toFixed(3)} sidecar_rss_mb=${rss.toFixed(1)} `
    + `ticks/s=${tick.rate} firehose=${fire.rate}/s refused=${tick.refused + fire.refused} missed=${missed} client_errors=${errors} overflows=${sse.overflows ?? '?'}`);
} finally {
  for (const w of workers) {
    if (w.exitCode === null) {
      w.kill('SIGTERM');
      await w.exited;
    }
  }
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await c.exited;
    }
  }
  if (!process.env.KEEP_WORK) {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
