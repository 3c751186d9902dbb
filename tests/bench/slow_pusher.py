#!/usr/bin/env python3
"""A slow Pusher-protocol HTTP API for tests/bench/priority.sh.

Every request (batch_events or events) is answered after DELAY_MS, as a
loaded WebSocket server would; requests are served concurrently (one thread
each, as many as the sidecar opens). For each event on a channel starting
with ALARM_PREFIX it records latency = answer time - the "t" (unix µs) the
producer put in the event's data. Exits once EXPECT alarms arrived or after
TIMEOUT_S, printing one line of figures.

usage: slow_pusher.py PORT DELAY_MS EXPECT TIMEOUT_S RESULT_FILE
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DELAY_MS, EXPECT, TIMEOUT_S = (int(a) for a in sys.argv[1:5])
RESULT = sys.argv[5]
ALARM_PREFIX = "alarms-"
lock = threading.Lock()
latencies_ms = []
telemetry = 0
telemetry_at_last_alarm = 0
started = time.time()
done = threading.Event()


def find_t(v):
    if isinstance(v, dict):
        if "t" in v:
            return v["t"]
        for x in v.values():
            t = find_t(x)
            if t is not None:
                return t
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global telemetry, telemetry_at_last_alarm
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(DELAY_MS / 1000)
        now_us = time.time() * 1e6
        doc = json.loads(body)
        events = doc.get("batch", [doc])
        with lock:
            for e in events:
                channels = e.get("channels") or [e.get("channel", "")]
                if any(c.startswith(ALARM_PREFIX) for c in channels):
                    t = find_t(json.loads(e["data"]))
                    latencies_ms.append((now_us - float(t)) / 1000)
                    telemetry_at_last_alarm = telemetry
                else:
                    telemetry += 1
            if len(latencies_ms) >= EXPECT:
                done.set()
        # One write: headers and body in separate segments would meet the
        # client's delayed ACK (Nagle) and add ~40 ms to every request.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def log_message(self, *args):
        pass


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
timed_out = not done.wait(TIMEOUT_S)
with lock:
    lat = sorted(latencies_ms)
    line = "alarms=%d/%d alarm_p50_ms=%s alarm_p99_ms=%s telemetry_delivered_before_last_alarm=%d target_telemetry_per_s=%.0f" % (
        len(lat),
        EXPECT,
        ("%.1f" % pct(lat, 50)) if lat else "none",
        (">%d" % (TIMEOUT_S * 1000)) if timed_out else "%.1f" % pct(lat, 99),
        telemetry_at_last_alarm if lat else telemetry,
        telemetry / (time.time() - started),
    )
with open(RESULT, "w") as f:
    f.write(line + "\n")
