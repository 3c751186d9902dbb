#!/usr/bin/env bash
# The dashboard's main-thread cost in headless Chromium at 10k samples/s, fed
# 100 ms windows vs every raw sample vs no input (tests/bench/dashboard.mjs; one line per
# variant). Needs the release build and tests/js/dashboard/node_modules
# (tests/bin/install-deps.sh --no-sockudo).
#   tests/bench/browser.sh [--rate=10000] [--tags=36] [--seconds=10] [--warmup=3] [--variants=idle,windows,raw] [--trace=N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ -d "$ROOT/tests/js/dashboard/node_modules/puppeteer-core" ] || { echo "browser.sh: puppeteer-core missing: tests/bin/install-deps.sh --no-sockudo" >&2; exit 1; }
exec node "$ROOT/tests/bench/dashboard.mjs" "$@"
