#!/usr/bin/env bash
# Alarms ahead of telemetry: alarm latency while 200,000 telemetry events are
# backlogged behind a slow Pusher target, with SCADA_PRIORITY=alarms-* and
# without a priority rule, in one run.
#
# The slow target is tests/bench/slow_pusher.py: a Pusher HTTP API that
# answers every request after PRIO_DELAY_MS (default 20 ms), one thread per
# request. With the sidecar's defaults (4 requests in flight, 10 events per
# batch_events) that would be 2,000 events/s at most; the Python server itself
# keeps it lower (it prints the rate it took, ~400/s on the 2-core VM), so
# 200,000 telemetry events are a backlog of several minutes. One PHP process
# hands over the telemetry; once the sidecar has journaled all of it, another
# sends PRIO_ALARMS alarms (default 100, one every 20 ms, on alarms-0..3)
# carrying their send time; the target records each alarm's latency when it
# answers its request (the 20 ms included). Without a rule the alarms wait
# behind the backlog; the run stops after PRIO_TIMEOUT_S (default 60 s) and
# says how many arrived by then.
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
  # The telemetry first; the alarms (another PHP process) once the sidecar has
  # journaled all of it, so the backlog is behind the target, not in PHP's outbox.
  SCADA_SIDECAR_SOCKET="$dir/run/sidecar.sock" SCADA_SPOOL_DIR="$dir/run/spool" \
    php -d extension="$EXT" -r '
      require $argv[3];
      [$backlog, $alarms, $status] = [(int)$argv[1], (int)$argv[2], $argv[4]];
      $s = new Scada\Broadcasting\ScadaBroadcastingService();
      for ($i = 0; $i < $backlog; $i++) { $s->broadcastData(["i" => $i, "value" => 21.5], "plant-telemetry"); }
      $s->flush();
      $deadline = microtime(true) + 120;
      while ((sidecar_status($status)["ingest"]["events"] ?? 0) < $backlog && microtime(true) < $deadline) { usleep(50000); }
      $a = new Scada\Broadcasting\ScadaBroadcastingService();
      for ($i = 0; $i < $alarms; $i++) {
        $a->broadcastData(["alarm" => $i, "t" => (int)(microtime(true) * 1e6)], "alarms-" . ($i % 4));
        $a->flush();
        usleep(20000);
      }' "$BACKLOG" "$ALARMS" "$ROOT/tests/bench/lib.php" "$dir/run/status.sock"
  wait "$target" || true
  printf 'priority %s backlog=%d rule=%s target_delay_ms=%d\n' "$(cat "$dir/result")" "$BACKLOG" "${rule:-none}" "$DELAY"
  kill -KILL "$SIDECAR_PID" 2>/dev/null || true; wait "$SIDECAR_PID" 2>/dev/null || true
}

echo "-- alarms ahead of telemetry: $BACKLOG telemetry events behind a Pusher target answering each request after ${DELAY} ms"
one_run 'alarms-*'
one_run ''
rm -rf "$WORK"
