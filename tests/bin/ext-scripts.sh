#!/usr/bin/env bash
# Runs the extension's own PHP scripts (ext/tests/php/*.php) with the PHP on
# PATH, as ext/tests/php.rs does under `cargo test`: no sidecar, events spool to
# a per-script directory, each script prints OK. The container matrix uses it
# to run them on every stack's PHP. The scripts are the ones php.rs runs plainly
# (`run("name")`); with --valgrind, the ones it runs under valgrind
# (`run_under_valgrind("name")`), with php.rs's settings: PHP's allocator off
# (USE_ZEND_ALLOC=0) and any valgrind error failing the script. The
# fault-injection scripts (a `failpoints` build) stay with cargo test on the
# native stack.
#   tests/bin/ext-scripts.sh [--valgrind] [DIR]   (SCADA_EXTENSION: the .so; default: PHP's extension_dir)
set -uo pipefail
under=php
if [ "${1:-}" = --valgrind ]; then under=valgrind; shift; fi
dir="${1:-$(dirname "$0")/../../ext/tests/php}"
ext="${SCADA_EXTENSION:-$(php -r 'echo ini_get("extension_dir");')/scada_broadcast.so}"
harness="$dir/../php.rs"
runner=run
[ "$under" = valgrind ] && runner=run_under_valgrind
if [ -f "$harness" ]; then
  mapfile -t scripts < <(grep -oE "\\b$runner\\(\"[A-Za-z0-9_]+\"\\)" "$harness" | sed -E 's/.*\("(.*)"\)/\1/' | sort -u | sed "s|^|$dir/|; s|\$|.php|")
elif [ "$under" = php ]; then
  scripts=("$dir"/*.php)
else
  echo "ext-scripts: --valgrind needs $harness (which scripts run under valgrind)" >&2; exit 2
fi
# Exit status valgrind uses when it found errors (php.rs's VALGRIND_ERROR_EXIT).
vg=()
[ "$under" = valgrind ] && vg=(env USE_ZEND_ALLOC=0 TEST_UNDER_VALGRIND=1 valgrind -q --leak-check=no --error-exitcode=99)
passed=0 failed=0 started=$SECONDS
for script in "${scripts[@]}"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/scada-ext-script.XXXXXX")
  out=$(SCADA_SIDECAR_SOCKET="$work/no-sidecar.sock" SCADA_SPOOL_DIR="$work/spool" TEST_DIR="$work" \
    "${vg[@]}" php -n -d "extension=$ext" -d zend.assertions=1 -d assert.exception=1 -d memory_limit=1G "$script" 2>&1)
  code=$?
  if [ "$code" = 0 ] && [ "$(printf '%s' "$out" | tail -n 1 | tr -d '[:space:]')" = OK ] \
     && ! printf '%s' "$out" | grep -qE 'Invalid (read|write)'; then
    passed=$((passed + 1)); echo "ok   $(basename "$script")"
  else
    failed=$((failed + 1)); echo "FAIL $(basename "$script") (exit $code$([ "$code" = 99 ] && echo ': valgrind found errors'))"
    printf '%s\n' "$out" | tail -n 30
  fi
  rm -rf "$work"
done
echo "ext-scripts on PHP $(php -r 'echo PHP_VERSION;')$([ "$under" = valgrind ] && echo ", under $(valgrind --version)"): $passed passed, $failed failed in $((SECONDS - started)) s"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
