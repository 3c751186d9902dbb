// A real browser-side client (pusher-js under node) for the tests, demo and benchmark.
//
// usage: node client.js --host H --port P --key K --channels a,private-b,presence-c
//                       [--auth URL] [--user-auth URL] [--out FILE] [--stats FILE] [--seconds N]
//                       [--echo EVENT]
// Writes one JSON line per received event to --out ({channel, event, data, at_ms}),
// "subscribed"/"error"/"members" lines as they happen, or, with --stats, a count and
// latency summary (from data.sent_us or data.data.sent_us) every 200 ms.
// A cache channel without a cached event gives a {"cache_miss": channel} line.
// With --echo EVENT the channels are subscribed through laravel-echo (Echo.channel(name),
// Echo.private(name without "private-")) and EVENT is what .listen() is given, as an app writes it.
const Pusher = require("pusher-js");
const fs = require("fs");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const channels = (args.channels || "scada-data").split(",").filter(Boolean);
const out = args.out ? fs.openSync(args.out, "a") : null;
const write = (obj) => { const line = JSON.stringify(obj) + "\n"; if (out !== null) fs.writeSync(out, line); else process.stdout.write(line); };

const options = {
  wsHost: args.host || "127.0.0.1", wsPort: +(args.port || 6001), forceTLS: false, enabledTransports: ["ws"],
  cluster: "mt1", disableStats: true, activityTimeout: 60000, pongTimeout: 30000,
};
// --auth-header "X-User: 7" is sent with authorization requests (the app's login).
const headers = {};
if (args["auth-header"]) { const [k, ...v] = args["auth-header"].split(":"); headers[k.trim()] = v.join(":").trim(); }
if (args.auth) options.channelAuthorization = { endpoint: args.auth, transport: "ajax", headers };
if (args["user-auth"]) options.userAuthentication = { endpoint: args["user-auth"], transport: "ajax", headers };
const pusher = new Pusher(args.key || "scada-key", options);
if (args["user-auth"]) pusher.signin();

// Sub-millisecond wall clock, comparable with PHP's microtime().
const nowMs = () => performance.timeOrigin + performance.now();
// Latency histogram in 0.05 ms buckets up to 2 s: recording and reading it
// never stalls the event loop (sorting samples would, and inflate the tail).
const BUCKET_MS = 0.05, BUCKETS = 40000;
const hist = new Uint32Array(BUCKETS + 1);
let samples = 0, maxLat = 0;
const record = (ms) => { hist[Math.min(BUCKETS, Math.max(0, Math.floor(ms / BUCKET_MS)))]++; samples++; if (ms > maxLat) maxLat = ms; };
const percentile = (p) => {
  if (!samples) return null;
  const target = Math.ceil(samples * p);
  let seen = 0;
  for (let i = 0; i <= BUCKETS; i++) { seen += hist[i]; if (seen >= target) return (i + 1) * BUCKET_MS; }
  return maxLat;
};
let count = 0, lastWrite = 0, firstAt = 0, lastAt = 0;
const stats = () => {
  const s = { ready: subscribed === channels.length, count, first_at_ms: firstAt, last_at_ms: lastAt,
    p50_ms: percentile(0.5), p99_ms: percentile(0.99), max_ms: samples ? maxLat : null };
  fs.writeFileSync(args.stats + ".tmp", JSON.stringify(s)); fs.renameSync(args.stats + ".tmp", args.stats);
};
let subscribed = 0;
const onSubscribed = (name, members) => {
  subscribed++;
  if (args.stats) stats();
  const line = { subscribed: name };
  if (members && members.count !== undefined) { line.members = members.count; line.me = members.me; }
  if (!args.stats) write(line);
};
const onEvent = (name, event, data) => {
  count++;
  if (args.stats) {
    const now = nowMs();
    if (!firstAt) firstAt = now;
    lastAt = now;
    const sent = data && (data.sent_us || (data.data && data.data.sent_us));
    if (sent) record(now - sent / 1000);
    if (now - lastWrite > 200) { stats(); lastWrite = now; }
  } else {
    write({ channel: name, event, data, at_ms: Date.now() });
  }
};
const onError = (name, e) => write({ error: name, status: e && e.status, detail: e && (e.error || e.type) });
if (args.echo) {
  // laravel-echo 2.x: a dependency of these test clients (tests/js/package.json), in the docker test image too.
  // Its CommonJS build is not loadable (the package is "type": "module"): import its ES module.
  const esm = require("path").join(require("path").dirname(require.resolve("laravel-echo")), "echo.js");
  import(require("url").pathToFileURL(esm).href).then(({ default: Echo }) => {
    const echo = new Echo({ broadcaster: "pusher", client: pusher, withoutInterceptors: true });
    for (const name of channels) {
      const ch = name.startsWith("private-") ? echo.private(name.slice("private-".length)) : echo.channel(name);
      if (ch.name !== name) throw new Error(`Echo subscribed ${ch.name}, not ${name}`);
      ch.subscribed(() => onSubscribed(name))
        .error((e) => onError(name, e))
        .listen(args.echo, (data) => onEvent(name, args.echo, data))
        .on("pusher:cache_miss", () => write({ cache_miss: name }));
    }
  }, (e) => { write({ error: "laravel-echo", detail: String(e) }); process.exit(1); });
} else {
  for (const name of channels) {
    const ch = pusher.subscribe(name);
    ch.bind("pusher:subscription_succeeded", (members) => onSubscribed(name, members));
    ch.bind("pusher:subscription_error", (e) => onError(name, e));
    ch.bind("pusher:member_added", (m) => { if (!args.stats) write({ member_added: name, member: m }); });
    ch.bind("pusher:cache_miss", () => write({ cache_miss: name }));
    ch.bind_global((event, data) => {
      if (event.startsWith("pusher:")) return;
      onEvent(name, event, data);
    });
  }
}
pusher.connection.bind("connected", () => { if (!args.stats) write({ connected: pusher.connection.socket_id }); });
pusher.connection.bind("error", (e) => write({ error: "connection", detail: JSON.stringify(e && e.error) }));
if (args.stats) setInterval(stats, 200);
const stop = () => { if (args.stats) stats(); pusher.disconnect(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (args.seconds) setTimeout(stop, +args.seconds * 1000);
