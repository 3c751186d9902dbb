#!/usr/bin/env bash
# 1,000 SSE clients (npm eventsource, 4 node processes) on 10 channels x 10
# updates/s while 10k samples/s are aggregated into 10 other channels
# (tests/bench/sse.mjs; one line). Each client holds a socket on both sides,
# so the descriptor limit is raised to the hard limit first.
#   tests/bench/sse.sh [--clients=1000] [--procs=4] [--channels=10] [--per=1] [--updates=10] [--firehose=10000] [--seconds=15]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ -d "$ROOT/tests/js/node_modules/eventsource" ] || { echo "sse.sh: the eventsource package is missing: tests/bin/install-deps.sh --no-sockudo" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node "$ROOT/tests/bench/sse.mjs" "$@"
