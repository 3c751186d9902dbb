#!/usr/bin/env bash
# The benchmark: prints every figure the README's benchmarks section quotes,
# with Laravel's own path (the anchors in ../shared/anchors) measured in the
# same run on the same machine. Uses the anchors' fixed ports (redis 6379).
#   make bench            # or: scripts/bench.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ANCHORS="${ANCHORS:-$ROOT/../shared/anchors}"
N="${BENCH_EVENTS:-200000}"
WORK="$(mktemp -d /tmp/scada-bench.XXXXXX)"

echo "== scada-broadcast benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(php -r 'echo PHP_VERSION;'))"
start_redis 6379 "$WORK"
REDIS_HOST=127.0.0.1 REDIS_PORT=6379 start_sidecar "$WORK"
export SCADA_SIDECAR_SOCKET="$WORK/run/sidecar.sock" SCADA_SPOOL_DIR="$WORK/run/spool"
STATUS="$WORK/run/status.sock"

echo
echo "-- hand-off cost (broadcastData, 6-key sample, sidecar running)"
php -d extension="$EXT" "$ROOT/bench/handoff.php" "$N"

echo
echo "-- end-to-end to Redis (PUBLISH acknowledged), Laravel format"
php "$ROOT/bench/throughput.php" "$STATUS" "$EXT" 1 "$N" redis || true
php "$ROOT/bench/throughput.php" "$STATUS" "$EXT" 2 "$N" redis || true

echo
echo "-- Laravel today (anchors, same run): RedisBroadcaster with ShouldBroadcastNow; queued dispatch"
if [ -f "$ANCHORS/bench_laravel.php" ]; then
  php "$ANCHORS/bench_laravel.php" redis-now 20000
  php "$ANCHORS/bench_laravel.php" queued 20000 | tr '\n' ' '; echo
  php "$ANCHORS/bench_worker.php"
else
  echo "anchors not found at $ANCHORS (set ANCHORS=...); skipped"
fi
php -r 'require "'"$ROOT/bench/lib.php"'"; echo json_encode(sidecar_status($argv[1])["ingest"]), "\n";' "$STATUS" >&2; ls -la "$WORK/run/spool" >&2; cp "$WORK/sidecar.log" /tmp/last-bench-sidecar.log; rm -rf "$WORK"
