// One process of the SSE benchmark's clients (forked by tests/bench/sse.mjs):
// COUNT EventSource clients (the npm `eventsource` package, as a Node service
// or a test would use it), client i on PER channels from bench-(FIRST+i)%CHANNELS
// on. Each `bench.tick` event's latency is the receipt time minus the
// producer's clock in its payload; a jump in a channel's tick numbers counts
// as missed. The parent sends 'start' and 'stop' (the measured window) and
// gets {received, latencies, errors, open, missed}.
import { createRequire } from 'node:module';

// The test clients' package (tests/js/node_modules); ESM ignores NODE_PATH, so resolve from there.
const { EventSource } = createRequire(new URL('../js/package.json', import.meta.url))('eventsource');

const [base, count, first, per, channels] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-millisecond
let measuring = false;
let received = 0;
let errors = 0;
let open = 0;
let missed = 0; // ticks a client never got: a jump in a channel's seq (each channel's ticks are numbered 0, 1, 2, ...)
const latencies = [];
const clients = [];
for (let i = 0; i < Number(count); i++) {
  const names = [];
  for (let k = 0; k < Number(per); k++) {
    names.push(`bench-${(Number(first) + i + k) % Number(channels)}`);
  }
  const es = new EventSource(`${base}/sse?channels=${names.join(',')}`);
  es.onopen = () => { open++; };
  es.onerror = () => { errors++; };
  const lastSeq = new Map(); // channel number → last seq seen
  es.addEventListener('bench.tick', (e) => {
    const t = now();
    const tick = JSON.parse(e.data);
    const channel = tick.channel;
    if (lastSeq.has(channel) && tick.seq !== lastSeq.get(channel) + 1) {
      missed += Math.max(0, tick.seq - lastSeq.get(channel) - 1);
    }
    lastSeq.set(channel, tick.seq);
    if (!measuring) {
      return;
    }
    received++;
    latencies.push(t - tick.sent_us / 1000);
  });
  es.addEventListener('overflow', () => { errors++; });
  clients.push(es);
}
const report = setInterval(() => process.send({ open, errors }), 500);
process.on('message', (m) => {
  if (m === 'start') {
    measuring = true;
  } else if (m === 'stop') {
    measuring = false;
    clearInterval(report);
    process.send({ done: true, received, latencies, errors, open, missed }, () => {
      clients.forEach((es) => es.close());
      process.exit(0);
    });
  }
});
