#!/usr/bin/env bash
# make docker-test: builds docker/Dockerfile's images with podman and runs the
# PHPUnit suites in a container against containerised Redis, Sockudo and the
# sidecar (the compose stack, started service by service).
#
# Works without a Docker engine and without pulling: base images that are not
# present locally are replaced by stand-ins built here (docker/standins/).
#   docker/test.sh            build, check, run the stack and both suites
#   docker/test.sh --smoke    build, check, run the stack suite only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

suites="stack,integration"
for arg in "$@"; do
  case "$arg" in
    --smoke) suites="stack" ;;
    *) echo "docker-test: unknown option $arg" >&2; exit 2 ;;
  esac
done

tests/bin/install-deps.sh --docker
started=$(date +%s)
step() { printf '\n== docker-test [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/scada-broadcast"
mkdir -p "$CACHE"
# runc: the default runtime fails on this host's hybrid cgroups.
P=(podman --runtime runc --cgroup-manager cgroupfs)

have() { "${P[@]}" image exists "$1"; }

# Containers get the host's limits where allowed; some hosts refuse them
# inside containers (nproc), then fixed, generous values are used.
ULIMITS=(--ulimit host)

# --- 1. base images: real ones if present, stand-ins otherwise -------------
step "base images"
if ! have docker.io/library/debian:bookworm-slim; then
  rootfs="$CACHE/rootfs-bookworm"
  if [ ! -x "$rootfs/bin/bash" ]; then
    echo "debootstrap --variant=minbase bookworm (once, cached in $rootfs)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
  fi
  # Trimmed like the -slim images: no docs, man pages, locales or apt caches.
  tar -C "$rootfs" --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
      --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' -c . \
    | "${P[@]}" import -q - localhost/scada-standin-rootfs:bookworm >/dev/null
fi
if ! "${P[@]}" run --rm "${ULIMITS[@]}" --network=host localhost/scada-standin-rootfs:bookworm true 2>/dev/null \
   && ! "${P[@]}" run --rm "${ULIMITS[@]}" --network=host docker.io/library/debian:bookworm-slim true 2>/dev/null; then
  ULIMITS=(--ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" --ulimit nproc=8192:8192)
fi
BUILD=("${P[@]}" build --pull=never --format docker --network host "${ULIMITS[@]}")
# Health checks run on demand (`podman healthcheck run`): without systemd,
# podman cannot schedule them and says so on every start; keep that out of the log.
RUN=(run_quiet "${P[@]}" run "${ULIMITS[@]}" --network=host)
run_quiet() { "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

standin() { # image-name containerfile context
  if have "$1"; then return; fi
  echo "stand-in for $1"
  "${BUILD[@]}" -q -t "$1" -f "$2" "$3" >/dev/null
}
if ! have docker.io/library/debian:bookworm-slim; then
  # This machine's extra CA certificates (a TLS-intercepting egress proxy)
  # go into the stand-in, as a company mirror of the base image would carry them.
  ctx="$CACHE/standin-debian"
  rm -rf "$ctx" && mkdir -p "$ctx/extra-ca"
  cp docker/standins/debian.Containerfile "$ctx/Containerfile"
  cp docker/standins/debian.sources "$ctx/"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
  standin docker.io/library/debian:bookworm-slim "$ctx/Containerfile" "$ctx"
  rm -rf "$ctx"
fi
if ! have docker.io/library/rust:1.95-bookworm; then
  ctx="$CACHE/standin-rust"
  rm -rf "$ctx" && mkdir -p "$ctx/toolchain"
  toolchain="$(rustc --print sysroot)"
  cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$ctx/toolchain/" 2>/dev/null || cp -a "$toolchain/bin" "$toolchain/lib" "$ctx/toolchain/"
  cp docker/standins/rust.Containerfile "$ctx/Containerfile"
  standin docker.io/library/rust:1.95-bookworm "$ctx/Containerfile" "$ctx"
  rm -rf "$ctx"
fi
standin docker.io/library/redis:7-bookworm docker/standins/redis.Containerfile docker/standins
if ! have docker.io/sockudo/sockudo:5.2.0; then
  ctx="$CACHE/standin-sockudo"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$(command -v sockudo || echo "$HOME/.cargo/bin/sockudo")" "$ctx/sockudo"
  cp docker/standins/sockudo.Containerfile "$ctx/Containerfile"
  standin docker.io/sockudo/sockudo:5.2.0 "$ctx/Containerfile" "$ctx"
  rm -rf "$ctx"
fi

# --- 2. the real images -----------------------------------------------------
for target in sidecar php tests; do
  step "podman build --target $target (docker/Dockerfile)"
  t0=$(date +%s)
  "${BUILD[@]}" -f docker/Dockerfile --target "$target" -t "scada-broadcast/$target:latest" . >"$CACHE/build-$target.log" 2>&1 \
    || { tail -40 "$CACHE/build-$target.log"; exit 1; }
  echo "built scada-broadcast/$target in $(( $(date +%s) - t0 ))s"
done

size() { "${P[@]}" image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
base=$(size docker.io/library/debian:bookworm-slim)
step "image sizes"
for image in docker.io/library/debian:bookworm-slim scada-broadcast/sidecar:latest scada-broadcast/php:latest scada-broadcast/tests:latest; do
  printf '  %-42s %s\n' "$image" "$(mb "$(size "$image")")"
done
over=$(( $(size scada-broadcast/sidecar:latest) - base ))
echo "  sidecar image over its base: $(mb "$over") (target: <= 40 MB)"
[ "$over" -le 40000000 ] || { echo "docker-test: the sidecar image grew over 40 MB above its base" >&2; exit 1; }

# --- 3. what the images promise ---------------------------------------------
step "checks"
sidecar_uid=$("${RUN[@]}" --rm --entrypoint id scada-broadcast/sidecar:latest -u)
php_uid=$("${RUN[@]}" --rm scada-broadcast/php:latest id -u)
echo "  sidecar runs as uid $sidecar_uid, php as uid $php_uid"
[ "$sidecar_uid" != 0 ] && [ "$php_uid" != 0 ] || { echo "docker-test: an image runs as root" >&2; exit 1; }
build_id=$("${RUN[@]}" --rm scada-broadcast/php:latest php -i | grep 'PHP Extension Build')
modules=$("${RUN[@]}" --rm scada-broadcast/php:latest sh -c 'php -m; php-fpm8.2 -m')
ini=$("${RUN[@]}" --rm scada-broadcast/php:latest php --ini | grep scada_broadcast)
echo "  $build_id; php and php-fpm load: $(echo "$modules" | grep -c '^scada_broadcast$') of 2; ini: $ini"
[ "$(echo "$modules" | grep -c '^scada_broadcast$')" = 2 ] || { echo "docker-test: the extension is not loaded by php and php-fpm" >&2; exit 1; }
"${RUN[@]}" --rm scada-broadcast/php:latest php -r 'new Scada\Broadcasting\ScadaBroadcastingService(); echo "  ScadaBroadcastingService constructs in the php image\n";'

# --- 4. the compose stack, service by service ---------------------------------
# Host networking (this host's container networking is unavailable), so the
# services get free ports instead of their own addresses.
free_port() { php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'; }
project="scada-dt-$$"
REDIS_PORT=$(free_port)
PUSHER_PORT=$(free_port)
SECRET="docker-test-secret-$RANDOM$RANDOM"
cleanup() {
  for c in tests php sidecar sockudo redis; do
    "${P[@]}" rm --force --ignore --time 2 "$project-$c" >/dev/null 2>&1 || true
  done
  "${P[@]}" volume rm --force "$project-run" "$project-data" >/dev/null 2>&1 || true
  if "${P[@]}" ps -a --format '{{.Names}}' | grep -q "^$project-"; then
    echo "docker-test: containers of $project are still there" >&2
  fi
}
trap cleanup EXIT
common_env=(-e REDIS_HOST=127.0.0.1 -e "REDIS_PORT=$REDIS_PORT"
  -e PUSHER_APP_ID=scada-app -e PUSHER_APP_KEY=scada-key -e "PUSHER_APP_SECRET=$SECRET"
  -e PUSHER_HOST=127.0.0.1 -e "PUSHER_PORT=$PUSHER_PORT" -e PUSHER_SCHEME=http)

step "stack: redis, sockudo, sidecar, php-fpm (restart=unless-stopped)"
"${RUN[@]}" -d --name "$project-redis" --restart unless-stopped docker.io/library/redis:7-bookworm \
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null
"${RUN[@]}" -d --name "$project-sockudo" --restart unless-stopped \
  -e HOST=127.0.0.1 -e "PORT=$PUSHER_PORT" -e SOCKUDO_DEFAULT_APP_ID=scada-app -e SOCKUDO_DEFAULT_APP_KEY=scada-key \
  -e "SOCKUDO_DEFAULT_APP_SECRET=$SECRET" -e SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION=true \
  -e SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=100000 -e SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE=100 \
  -e RATE_LIMITER_ENABLED=false -e METRICS_ENABLED=false docker.io/sockudo/sockudo:5.2.0 >/dev/null
"${P[@]}" volume create "$project-run" >/dev/null
"${P[@]}" volume create "$project-data" >/dev/null
"${RUN[@]}" -d --name "$project-sidecar" --restart unless-stopped "${common_env[@]}" -e SCADA_PUSHER_IDEMPOTENCY_KEY=true \
  -v "$project-run:/run/scada-broadcast" -v "$project-data:/var/lib/scada-broadcast" scada-broadcast/sidecar:latest >/dev/null

wait_healthy() { # container seconds
  for _ in $(seq 1 "$2"); do
    if "${P[@]}" healthcheck run "$1" >/dev/null 2>&1; then echo "  $1: healthy"; return 0; fi
    sleep 1
  done
  echo "docker-test: $1 did not become healthy" >&2
  "${P[@]}" logs "$1" 2>&1 | tail -30 >&2
  return 1
}
wait_healthy "$project-sidecar" 60
"${RUN[@]}" -d --name "$project-php" --restart unless-stopped "${common_env[@]}" -e "PHP_FPM_LISTEN=127.0.0.1:$(free_port)" \
  -v "$project-run:/run/scada-broadcast" scada-broadcast/php:latest >/dev/null
wait_healthy "$project-php" 30
"${RUN[@]}" --rm "${common_env[@]}" -v "$project-run:/run/scada-broadcast" scada-broadcast/php:latest \
  php -r '$ok = (new Scada\Broadcasting\ScadaBroadcastingService())->broadcast("docker-smoke", "ping", ["from" => "php image"]); echo "  php container -> sidecar socket: ", $ok ? "accepted" : "refused", "\n"; exit($ok ? 0 : 1);'
echo "  sidecar: $("${P[@]}" exec "$project-sidecar" scada-sidecar --health)"

# --- 5. the PHPUnit suites in the tests container ------------------------------
step "phpunit --testsuite $suites (in scada-broadcast/tests)"
t0=$(date +%s)
"${RUN[@]}" --rm --name "$project-tests" "${common_env[@]}" -e SCADA_STACK=external \
  -e "SCADA_SIDECAR_SOCKET=/run/scada-broadcast/sidecar.sock" -v "$project-run:/run/scada-broadcast" \
  scada-broadcast/tests:latest phpunit -c tests/phpunit.xml --do-not-cache-result --testsuite "$suites"
echo "suites ran in $(( $(date +%s) - t0 ))s"

"${P[@]}" logs "$project-sidecar" 2>&1 | grep -F "$SECRET" && { echo "docker-test: the secret reached the sidecar's log" >&2; exit 1; }
step "done"
