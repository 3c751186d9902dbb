#!/usr/bin/env bash
# Vendors the dashboard page's browser assets from npm into php/resources/dashboard/vendor/
# (committed, so neither users nor the page need npm or the internet at run time):
#   tests/bin/build-dashboard-assets.sh            # npm ci in tests/js/dashboard when needed, then copy
#   tests/bin/build-dashboard-assets.sh OUT_DIR    # the same files into OUT_DIR (the test compares them)
# The versions are pinned in tests/js/dashboard/package-lock.json; the files are copied
# byte for byte (no minifier of ours), so a second run changes nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PKG="$ROOT/tests/js/dashboard"
OUT="${1:-$ROOT/php/resources/dashboard/vendor}"

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -f "$PKG/node_modules/.package-lock.json" ] || [ "$PKG/package-lock.json" -nt "$PKG/node_modules/.package-lock.json" ]; then
  echo "build-dashboard-assets: npm ci (tests/js/dashboard)"
  (cd "$PKG" && npm ci --no-audit --no-fund --silent)
fi

mkdir -p "$OUT"
NM="$PKG/node_modules"
# source (relative to node_modules) -> file name in vendor/
FILES=(
  "uplot/dist/uPlot.iife.min.js uPlot.iife.min.js"
  "uplot/dist/uPlot.min.css uPlot.min.css"
  "uplot/LICENSE uPlot.LICENSE"
  "laravel-echo/dist/echo.js echo.js"
  "laravel-echo/LICENSE.md laravel-echo.LICENSE.md"
  "pusher-js/dist/web/pusher.min.js pusher.min.js"
  "pusher-js/LICENCE pusher-js.LICENCE"
)
for entry in "${FILES[@]}"; do
  read -r src name <<<"$entry"
  install -m 0644 "$NM/$src" "$OUT/$name"
done
# Our own Echo connector, so the page works wherever its folder is served (Laravel's public/, the sidecar).
install -m 0644 "$ROOT/php/resources/js/scada-sse-connector.js" "$OUT/scada-sse-connector.js"

# What is here and from where (versions from the lock file, no timestamps).
node -e '
  const lock = require(process.argv[1]);
  const v = (n) => lock.packages["node_modules/" + n].version;
  process.stdout.write(`Vendored by tests/bin/build-dashboard-assets.sh from npm (tests/js/dashboard/package-lock.json); do not edit.\n` +
    `uplot ${v("uplot")}: uPlot.iife.min.js, uPlot.min.css (MIT, uPlot.LICENSE)\n` +
    `laravel-echo ${v("laravel-echo")}: echo.js (MIT, laravel-echo.LICENSE.md)\n` +
    `pusher-js ${v("pusher-js")}: pusher.min.js (MIT, pusher-js.LICENCE)\n` +
    `scada-sse-connector.js: php/resources/js/scada-sse-connector.js of this repository\n`);
' "$PKG/package-lock.json" >"$OUT/README.txt"
echo "build-dashboard-assets: $(ls "$OUT" | wc -l) files in $OUT"
