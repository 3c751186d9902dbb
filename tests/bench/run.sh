#!/usr/bin/env bash
# The benchmark: prints every figure the README's benchmarks section quotes,
# with Laravel's own path (the anchors in ../shared/anchors) measured in the
# same run on the same machine. Uses the anchors' fixed ports: redis 6379 and
# Sockudo 6001 (app scada-app / scada-key / scada-secret).
#   make bench            # or: tests/bench/run.sh
set -euo pipefail
source "$(dirname "$0")/../bin/stack.sh"
ANCHORS="${ANCHORS:-$ROOT/../shared/anchors}"
N="${BENCH_EVENTS:-200000}"
PN="${BENCH_PUSHER_EVENTS:-50000}"
WORK="$(mktemp -d /tmp/scada-bench.XXXXXX)"
export NODE_PATH="$ROOT/tests/js/node_modules"
# The PHP 8.4 hand-off: in the trixie test image, host networking, a sidecar
# of its own delivering to this run's redis-server on 6379. The image is
# rebuilt from this checkout every time (docker/test.sh --build-only: cargo
# and the image layers are incremental, seconds when nothing changed), so the
# figures are never an older build's; a failed build gives no 8.4 figure.
php84_handoff() { # N
  local image=scada-broadcast/tests:trixie P=(podman --runtime runc --cgroup-manager cgroupfs)
  echo "   (docker/test.sh --stack trixie --build-only)"
  "$ROOT/docker/test.sh" --stack trixie --build-only >"$WORK/build-trixie.log" 2>&1 || { tail -20 "$WORK/build-trixie.log"; return 1; }
  "${P[@]}" run --rm --network=host --ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" --ulimit nproc=8192:8192 "$image" sh -c '
    export SCADA_SIDECAR_SOCKET=/tmp/bench/run/sidecar.sock SCADA_SPOOL_DIR=/tmp/bench/run/spool
    REDIS_HOST=127.0.0.1 REDIS_PORT=6379 SCADA_DATA_DIR=/tmp/bench/data SCADA_LOG=warn scada-sidecar >/tmp/sidecar.log 2>&1 &
    for _ in $(seq 1 300); do [ -S "$SCADA_SIDECAR_SOCKET" ] && break; sleep 0.05; done
    printf "PHP %s: " "$(php -r "echo PHP_VERSION;")"
    php tests/bench/handoff.php "$1"' sh "$1" 2> >(grep -v 'systemd' >&2)
}
have_anchors() { [ -f "$ANCHORS/bench_laravel.php" ] || { echo "   (anchors not found at $ANCHORS; set ANCHORS=...)"; return 1; }; }

echo "== scada-broadcast benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, PHP $(php -r 'echo PHP_VERSION;'), $(redis-server --version | awk '{print $3}'))"

# ---- Redis (Laravel's RedisBroadcaster format) ----
start_redis 6379 "$WORK"
mkdir -p "$WORK/redis"
REDIS_HOST=127.0.0.1 REDIS_PORT=6379 start_sidecar "$WORK/redis"
export SCADA_SIDECAR_SOCKET="$WORK/redis/run/sidecar.sock" SCADA_SPOOL_DIR="$WORK/redis/run/spool"
STATUS="$WORK/redis/run/status.sock"
echo
echo "-- hand-off cost (broadcastData, 6-key sample, sidecar running)"
printf 'PHP %s: ' "$(php -r 'echo PHP_VERSION;')"
php -d extension="$EXT" "$ROOT/tests/bench/handoff.php" "$N"
echo
echo "-- hand-off cost on PHP 8.4, same run (Debian trixie's PHP in scada-broadcast/tests:trixie, its own build of the extension, its own sidecar to the same redis-server)"
php84_handoff "$N" || { BENCH_FAILED=1; echo "   the PHP 8.4 hand-off could not be measured (see above)"; }
echo
echo "-- drop_oldest with nowhere to go (no sidecar, unwritable spool): every call evicts one older frame"
php -n -d extension="$EXT" "$ROOT/ext/tests/bench/evict.php"
php -n -d extension="$EXT" "$ROOT/ext/tests/bench/evict.php" 65536
echo
echo "-- end-to-end to Redis (PUBLISH acknowledged), Laravel format"
php "$ROOT/tests/bench/throughput.php" "$STATUS" "$EXT" 1 "$N" redis 2>/dev/null || true
php "$ROOT/tests/bench/throughput.php" "$STATUS" "$EXT" 2 "$N" redis 2>/dev/null || true
echo
echo "-- host-wide aggregation (broadcastAggregatedData, 100 ms windows; one sidecar core)"
php -d extension="$EXT" "$ROOT/tests/bench/handoff.php" "$N" broadcastAggregatedData
php "$ROOT/tests/bench/aggregate.php" accept "$STATUS" "$EXT" 2 "$N" 2>/dev/null
php "$ROOT/tests/bench/aggregate.php" output "$STATUS" "$EXT" 6379 10 100 5
stop_sidecar
echo
echo "-- Laravel today, same run: RedisBroadcaster + ShouldBroadcastNow; queued dispatch; one queue worker"
if have_anchors; then
  php "$ANCHORS/bench_laravel.php" redis-now 20000
  php "$ANCHORS/bench_laravel.php" queued 20000 | tr '\n' ' '; echo
  php "$ANCHORS/bench_worker.php"
fi

# ---- Pusher HTTP API (Sockudo), received by a pusher-js client ----
start_sockudo 6001 "$WORK"
PUSHER="PUSHER_APP_ID=scada-app PUSHER_APP_KEY=scada-key PUSHER_APP_SECRET=scada-secret PUSHER_HOST=127.0.0.1 PUSHER_PORT=6001 PUSHER_SCHEME=http"
for B in 10 100; do
  mkdir -p "$WORK/pusher-$B"
  env $PUSHER SCADA_PUSHER_MAX_BATCH=$B bash -c "source '$ROOT/tests/bin/stack.sh'; trap - EXIT; start_sidecar '$WORK/pusher-$B'; echo \$SIDECAR_PID > '$WORK/pusher-$B/pid'"
  SIDECAR_PID=$(cat "$WORK/pusher-$B/pid"); PIDS+=("$SIDECAR_PID")
  export SCADA_SIDECAR_SOCKET="$WORK/pusher-$B/run/sidecar.sock" SCADA_SPOOL_DIR="$WORK/pusher-$B/run/spool"
  STATUS="$WORK/pusher-$B/run/status.sock"
  echo
  echo "-- Pusher HTTP API, batch size $B: the server's own ceiling (anchor: sequential batch_events, $B per request) vs the sidecar, both received by pusher-js"
  if have_anchors; then
    php "$ROOT/tests/bench/pusher.php" compare "$STATUS" "$EXT" 6001 "$B" "$PN" "${BENCH_ROUNDS:-3}" "$ANCHORS/bench_pusher_batch.php"
  fi
  if [ "$B" = 10 ]; then
    php "$ROOT/tests/bench/pusher.php" latency "$STATUS" "$EXT" 6001 10000 10
    echo
    echo "-- Laravel today, same run: the pusher driver's synchronous POST /events per event"
    if have_anchors; then php "$ROOT/tests/bench/pusher.php" anchor - - 6001 "$ANCHORS/bench_pusher_http.php" 2000; fi
  fi
  stop_sidecar
done
echo; "$ROOT/tests/bench/priority.sh" || BENCH_FAILED=1
echo; echo "-- the dashboard in Chromium at 10k samples/s: main-thread time, windows vs raw (tests/bench/browser.sh)"; "$ROOT/tests/bench/browser.sh" || BENCH_FAILED=1
echo; echo "-- 1,000 SSE clients, 10 channels x 10 updates/s, 10k samples/s aggregated meanwhile (tests/bench/sse.sh)"; "$ROOT/tests/bench/sse.sh" || BENCH_FAILED=1
rm -rf "$WORK"
exit "${BENCH_FAILED:-0}"
