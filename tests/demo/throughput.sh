#!/usr/bin/env bash
# make demo-throughput: the whole path at full speed, checked end to end.
# redis-server + Sockudo (Pusher protocol) + scada-sidecar + PHP producers
# (the extension) + a Redis subscriber + a pusher-js browser client; a line per
# second shows produced, journaled, delivered and received counts, rates and
# latency; it ends by checking that nothing was lost on either path.
#   DEMO_PRODUCERS=2 DEMO_RATE=20000 DEMO_SECONDS=15 make demo-throughput
set -euo pipefail
source "$(dirname "$0")/../bin/stack.sh"
PRODUCERS="${DEMO_PRODUCERS:-2}"
RATE="${DEMO_RATE:-20000}"
SECONDS_RUN="${DEMO_SECONDS:-15}"
WORK="$(mktemp -d /tmp/scada-demo.XXXXXX)"
REDIS_PORT="$(free_port)"
SOCKUDO_PORT="$(free_port)"
export NODE_PATH="$ROOT/tests/js/node_modules"

echo "scada-broadcast demo: $PRODUCERS PHP producers x $RATE samples/s for ${SECONDS_RUN}s"
echo "work dir: $WORK (logs: sidecar.log, redis.log)"
start_redis "$REDIS_PORT" "$WORK"
start_sockudo "$SOCKUDO_PORT" "$WORK"
REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT" \
PUSHER_APP_ID=scada-app PUSHER_APP_KEY=scada-key PUSHER_APP_SECRET=scada-secret \
PUSHER_HOST=127.0.0.1 PUSHER_PORT="$SOCKUDO_PORT" PUSHER_SCHEME=http SCADA_PUSHER_MAX_BATCH=100 \
  start_sidecar "$WORK"
echo "redis-server on 127.0.0.1:$REDIS_PORT; Sockudo on 127.0.0.1:$SOCKUDO_PORT; sidecar on $WORK/run/sidecar.sock"
export SCADA_SIDECAR_SOCKET="$WORK/run/sidecar.sock" SCADA_SPOOL_DIR="$WORK/run/spool"

php "$ROOT/tests/bin/subscribe.php" "$REDIS_PORT" 'laravel_database_*' "$WORK/subscriber.json" --stats &
PIDS+=($!)
wait_for 10 "the subscriber" grep -q ready "$WORK/subscriber.json" 2>/dev/null
node "$ROOT/tests/js/client.js" --port "$SOCKUDO_PORT" --key scada-key --channels scada-realtime --stats "$WORK/pusher-js.json" &
PIDS+=($!)
wait_for 20 "the pusher-js client" grep -q '"ready":true' "$WORK/pusher-js.json" 2>/dev/null

for p in $(seq 1 "$PRODUCERS"); do
  php -d extension="$EXT" "$ROOT/tests/demo/producer.php" "$RATE" "$SECONDS_RUN" "$WORK/producer-$p.json" &
  PIDS+=($!)
done
php "$ROOT/tests/demo/monitor.php" "$WORK/run/status.sock" "$WORK" "$PRODUCERS" "$((SECONDS_RUN + 60))"
status=$?
echo
echo "sidecar status: $(curl -s --unix-socket "$WORK/run/status.sock" http://localhost/status | head -c 600)..."
exit $status
