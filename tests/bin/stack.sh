# Shared shell helpers for tests/demo/run.sh and tests/bench/run.sh: start real services on
# loopback, wait for them, stop everything on exit.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXT="$ROOT/target/release/libscada_broadcast.so"
SIDECAR="$ROOT/target/release/scada-sidecar"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_port() {
  php -r '$s=stream_socket_server("tcp://127.0.0.1:0");$n=stream_socket_get_name($s,false);echo substr($n,strrpos($n,":")+1);'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.05
  done
}

start_redis() { # start_redis PORT LOGDIR
  if port_open "$1"; then echo "port $1 is already in use; stop that process or pick another port" >&2; return 1; fi
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no >"$2/redis.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 "redis-server on port $1" port_open "$1"
}

start_sockudo() { # start_sockudo PORT LOGDIR: app scada-app / scada-key / scada-secret (the anchors' app)
  if port_open "$1"; then echo "port $1 is already in use; stop that process or pick another port" >&2; return 1; fi
  SOCKUDO_DEFAULT_APP_ID=scada-app SOCKUDO_DEFAULT_APP_KEY=scada-key SOCKUDO_DEFAULT_APP_SECRET=scada-secret \
    SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION=true HOST=127.0.0.1 PORT="$1" RATE_LIMITER_ENABLED=false METRICS_ENABLED=false \
    SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000 SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE=1000 LOG_COLORS_ENABLED=false \
    "${SOCKUDO_BIN:-$(command -v sockudo || echo "$HOME/.cargo/bin/sockudo")}" >"$2/sockudo.log" 2>&1 &
  PIDS+=($!)
  wait_for 20 "sockudo on port $1" port_open "$1"
}

start_sidecar() { # start_sidecar DIR (env: REDIS_*, PUSHER_* ...)
  local dir=$1
  SCADA_SIDECAR_SOCKET="$dir/run/sidecar.sock" SCADA_DATA_DIR="$dir/data" SCADA_LOG="${SCADA_LOG:-info}" \
    "$SIDECAR" >"$dir/sidecar.log" 2>&1 &
  PIDS+=($!)
  SIDECAR_PID=$!
  wait_for 15 "the sidecar socket" test -S "$dir/run/sidecar.sock"
}

stop_sidecar() { # graceful stop of the last sidecar started
  kill -TERM "$SIDECAR_PID" 2>/dev/null || true
  wait "$SIDECAR_PID" 2>/dev/null || true
}
