// A real browser-style SSE client (the `eventsource` package, WHATWG EventSource)
// for the tests: it reconnects by itself and resumes with Last-Event-ID.
//
// usage: node sse-client.mjs --url URL --events a,b --out FILE
// Writes one JSON line per event to --out ({id, event, data, at_ms}; data is
// the raw text), plus {open: true} on each (re)connection and {error} lines.
import { EventSource } from "eventsource";
import fs from "node:fs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const out = fs.openSync(args.out, "a");
const write = (obj) => fs.writeSync(out, JSON.stringify(obj) + "\n");

const es = new EventSource(args.url);
es.addEventListener("open", () => write({ open: true }));
es.addEventListener("error", (e) => write({ error: (e && (e.message || e.code)) || "error" }));
// Named events reach only their own listeners; gap and overflow are ours.
const names = new Set([...(args.events || "").split(",").filter(Boolean), "message", "gap", "overflow"]);
for (const name of names) {
  es.addEventListener(name, (e) => write({ id: e.lastEventId, event: name, data: e.data, at_ms: Date.now() }));
}
const stop = () => { es.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
