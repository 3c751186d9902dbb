#!/usr/bin/env bash
# Alarms ahead of telemetry: alarm latency while 200,000 telemetry events are
# backlogged behind a slow Pusher target, with SCADA_PRIORITY=alarms-* and
# without a priority rule, in one run.
#
# The slow target is tests/bench/slow_pusher.py: a Pusher HTTP API that
# answers every request after PRIO_DELAY_MS (default 20 ms). With the
# sidecar's defaults (4 requests in flight, 10 events per batch_events) it
# takes at most 2,000 events/s, so 200,000 telemetry events are a backlog of
# about 100 s. The producer (PHP, the extension) hands over the telemetry,
# then PRIO_ALARMS alarms (default 100, one every 20 ms) carrying their send
# time; the target records each alarm's latency when it answers its request.
# Without a rule the alarms wait behind the backlog; the run stops after
# PRIO_TIMEOUT_S (default 60 s) and says how many arrived by then.
#   tests/bench/priority.sh
set -euo pipefail
source "$(dirname "$0")/../bin/stack.sh"
BACKLOG="${PRIO_BACKLOG:-200000}"
ALARMS="${PRIO_ALARMS:-100}"
DELAY="${PRIO_DELAY_MS:-20}"
TIMEOUT="${PRIO_TIMEOUT_S:-60}"
WORK="$(mktemp -d /tmp/scada-prio.XXXXXX)"

one_run() { # one_run RULE (empty: no priority rule)
  local rule=$1 dir port target
  dir="$WORK/run-${rule:-none}"; dir="${dir//\*/x}"
  mkdir -p "$dir"
  port=$(free_port)
  python3 "$ROOT/tests/bench/slow_pusher.py" "$port" "$DELAY" "$ALARMS" "$TIMEOUT" "$dir/result" &
  target=$!; PIDS+=("$target")
  wait_for 10 "the slow pusher target" port_open "$port"
  SCADA_REDIS_ENABLED=false SCADA_PRIORITY="$rule" SCADA_LOG=warn \
    PUSHER_APP_ID=bench PUSHER_APP_KEY=bench-key PUSHER_APP_SECRET=bench-secret \
    PUSHER_HOST=127.0.0.1 PUSHER_PORT="$port" PUSHER_SCHEME=http \
    start_sidecar "$dir"
  SCADA_SIDECAR_SOCKET="$dir/run/sidecar.sock" SCADA_SPOOL_DIR="$dir/run/spool" \
    php -d extension="$EXT" -r '
      [$backlog, $alarms] = [(int)$argv[1], (int)$argv[2]];
      $s = new Scada\Broadcasting\ScadaBroadcastingService();
      for ($i = 0; $i < $backlog; $i++) { $s->broadcastData(["i" => $i, "value" => 21.5], "plant-telemetry"); }
      $s->flush();
      for ($i = 0; $i < $alarms; $i++) {
        $s->broadcastData(["alarm" => $i, "t" => (int)(microtime(true) * 1e6)], "alarms-" . ($i % 4));
        $s->flush();
        usleep(20000);
      }' "$BACKLOG" "$ALARMS"
  wait "$target" || true
  printf 'priority %s backlog=%d rule=%s target_delay_ms=%d\n' "$(cat "$dir/result")" "$BACKLOG" "${rule:-none}" "$DELAY"
  kill -KILL "$SIDECAR_PID" 2>/dev/null || true; wait "$SIDECAR_PID" 2>/dev/null || true
}

echo "-- alarms ahead of telemetry: $BACKLOG telemetry events behind a Pusher target answering each request after ${DELAY} ms"
one_run 'alarms-*'
one_run ''
rm -rf "$WORK"
