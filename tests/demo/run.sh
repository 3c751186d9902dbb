#!/usr/bin/env bash
# make demo: the live SCADA dashboard. A simulated plant (tests/demo/plant.php:
# 36 tags, a few alarms) sends through the extension to the sidecar, which
# streams the aggregation windows over SSE and serves the page itself at
# /dashboard/. Runs on SSE at once; when Sockudo is installed
# (tests/bin/install-deps.sh builds it, ~8 minutes once) the same stream also
# goes to Sockudo and a second URL shows the page over pusher-js.
#   DEMO_RATE=3000 DEMO_PORT=8090 DEMO_SECONDS=0 make demo   (0: until Ctrl-C)
set -euo pipefail
source "$(dirname "$0")/../bin/stack.sh"
RATE="${DEMO_RATE:-3000}"
RUN_SECONDS="${DEMO_SECONDS:-0}"
PORT="${DEMO_PORT:-8090}"
if port_open "$PORT"; then
  [ -n "${DEMO_PORT:-}" ] && { echo "port $PORT is in use: pick another DEMO_PORT" >&2; exit 1; }
  PORT="$(free_port)"
fi
WORK="$(mktemp -d /tmp/scada-demo.XXXXXX)"
SOCKUDO="${SOCKUDO_BIN:-$(command -v sockudo || echo "$HOME/.cargo/bin/sockudo")}"
CHANNELS="plant-live,alarms-plant"

sidecar_env=(SCADA_REDIS_ENABLED=false SCADA_SSE_ADDR="127.0.0.1:$PORT")
if [ -x "$SOCKUDO" ]; then
  SOCKUDO_PORT="$(free_port)"
  start_sockudo "$SOCKUDO_PORT" "$WORK"
  sidecar_env+=(PUSHER_APP_ID=scada-app PUSHER_APP_KEY=scada-key PUSHER_APP_SECRET=scada-secret
    PUSHER_HOST=127.0.0.1 PUSHER_PORT="$SOCKUDO_PORT" PUSHER_SCHEME=http
    SCADA_DASHBOARD_CONNECT="ws://127.0.0.1:$SOCKUDO_PORT,http://127.0.0.1:$SOCKUDO_PORT")
fi
export "${sidecar_env[@]}"
start_sidecar "$WORK"
wait_for 10 "the SSE listener on port $PORT" port_open "$PORT"

SCADA_SIDECAR_SOCKET="$WORK/run/sidecar.sock" SCADA_SPOOL_DIR="$WORK/run/spool" \
  php -d extension="$EXT" "$ROOT/tests/demo/plant.php" --rate="$RATE" --seconds="$RUN_SECONDS" \
  >"$WORK/plant.json" 2>"$WORK/plant.log" &
PLANT=$!
PIDS+=($PLANT)

url="http://127.0.0.1:$PORT/dashboard/?channels=$CHANNELS"
echo
echo "scada-broadcast demo: plant.php at $RATE samples/s -> extension -> sidecar -> browsers (logs: $WORK)"
echo
echo "  open the dashboard (SSE):  $url"
if [ -x "$SOCKUDO" ]; then
  echo "  over pusher-js (Sockudo):  http://127.0.0.1:$PORT/dashboard/?mode=pusher&key=scada-key&host=127.0.0.1&port=$SOCKUDO_PORT&channels=$CHANNELS"
else
  echo "  (Sockudo is not installed: tests/bin/install-deps.sh builds it; then this demo also shows the pusher-js path)"
fi
echo "  on a remote machine:       ssh -L $PORT:127.0.0.1:$PORT $(id -un)@$(hostname -f 2>/dev/null || hostname)  then open the URL locally"
echo
echo "Ctrl-C stops everything."
status() { curl -s --max-time 2 --unix-socket "$WORK/run/status.sock" http://localhost/status \
  | php -r '$s=json_decode(stream_get_contents(STDIN),true); if(!$s){exit;} $e=$s["sse"]??[];
      printf("  journaled %d events; SSE: %d browser(s) connected, %d events sent\n",
        $s["ingest"]["events"]??0, $e["clients_connected"]??0, $e["events_sent"]??0);' || true; }
while kill -0 "$PLANT" 2>/dev/null; do
  sleep 10
  kill -0 "$PLANT" 2>/dev/null && status
done
wait "$PLANT" || true
echo "plant.php: $(cat "$WORK/plant.json")"
status
