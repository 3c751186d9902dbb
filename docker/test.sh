#!/usr/bin/env bash
# make docker-test: builds docker/Dockerfile's images with podman and runs the
# PHPUnit suites in a container against containerised Redis, Sockudo and the
# sidecar (the compose stack, started service by service), on one stack:
#
#   bookworm  PHP 8.2, Laravel 8.83, PHPUnit 9.6, Redis 7.0   (images :latest, the compose stack's)
#   trixie    PHP 8.4, Laravel 10.48, PHPUnit 11.5, Redis 8.0 (images :trixie)
#   sid       PHP 8.4, Laravel 13.31, PHPUnit 13.4, Valkey 9   (images :sid)
#
# The binaries are compiled once, outside the image builds, and only copied
# into the images (docker/prebuilt/): the sidecar once for every stack (it does
# not link PHP; bookworm's glibc, the oldest), the extension once per PHP
# version against that PHP's headers (8.2 on bookworm, 8.4 on trixie; sid runs
# trixie's 8.4 build, same PHP API). Where this host is that release with that
# PHP, the host's own `cargo build --release --workspace` is used; otherwise
# cargo runs in a container of that release (docker/standins/builder.Containerfile)
# with this host's toolchain, crate registry and a per-release target
# directory in ~/.cache/scada-broadcast mounted, so it is incremental too.
# Each stack's php-fpm serves a real request that broadcasts (suite "stack");
# its PHPUnit runs the same suites. On trixie (PHP 8.4: the PHP the native run
# does not cover) the extension's own checks run too: its scripts under
# valgrind and the chaos scenarios that exercise the extension (4, 5, 6 with
# 300,000 fuzzed calls, 100,000 of them warm-up; 7, 20, FullDiskTest), as root
# with CAP_SYS_ADMIN so FullDiskTest can mount its tmpfs.
#
# Works without a Docker engine and without pulling: base images that are not
# present locally are replaced by stand-ins built here (docker/standins/),
# debootstrap'ed once per release and cached in ~/.cache/scada-broadcast.
#   docker/test.sh                     bookworm: build, check, run the stack and both suites
#   docker/test.sh --stack trixie      the same on trixie (or sid)
#   docker/test.sh --smoke             build, check, run the stack suite only
#   docker/test.sh --build-only        build the stack's images (make bench uses trixie's)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

suites="stack,integration"
stack=bookworm
build_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) suites="stack" ;;
    --build-only) build_only=1 ;;
    --stack) stack="${2:-}"; shift ;;
    --stack=*) stack="${1#--stack=}" ;;
    *) echo "docker-test: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# The stacks: Debian release -> PHP, the Redis server, image tag.
case "$stack" in
# EXT_RELEASE: the release whose PHP headers the extension is compiled against.
  bookworm) PHP_VERSION=8.2; REDIS_SERVER=redis-server; REDIS_USER=redis; TAG=latest; EXT_RELEASE=bookworm
            REDIS_IMAGE=docker.io/library/redis:7-bookworm ;;
  trixie)   PHP_VERSION=8.4; REDIS_SERVER=redis-server; REDIS_USER=redis; TAG=trixie; EXT_RELEASE=trixie
            REDIS_IMAGE=localhost/scada-standin/redis:trixie ;;
  sid)      PHP_VERSION=8.4; REDIS_SERVER=valkey-server; REDIS_USER=valkey; TAG=sid; EXT_RELEASE=trixie
            REDIS_IMAGE=localhost/scada-standin/valkey:sid ;;
  *) echo "docker-test: unknown stack '$stack' (bookworm, trixie or sid)" >&2; exit 2 ;;
esac
# The extension's valgrind runs and chaos scenarios: natively on 8.2, on trixie for 8.4
# (sid runs the same 8.4 build of the extension).
EXT_CHECKS=0
[ "$stack" = trixie ] && EXT_CHECKS=1
DEBIAN_IMAGE=docker.io/library/debian:$stack-slim
# PHPUnit 9.6 writes a result cache next to tests/phpunit.xml (read-only in the
# image) unless told not to; 10+ only caches with a cacheDirectory, and 13
# deprecates the flag.
NO_RESULT_CACHE=""
[ "$stack" = bookworm ] && NO_RESULT_CACHE="--do-not-cache-result"
tests/bin/install-deps.sh --docker
started=$(date +%s)
step() { printf '\n== docker-test %s [%ss] %s\n' "$stack" "$(( $(date +%s) - started ))" "$*"; }

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
rootfs_image() { # release: a debootstrap'ed minbase rootfs imported as an image (once, cached)
  local release=$1 rootfs="$CACHE/rootfs-$1"
  if have "localhost/scada-standin-rootfs:$release"; then return; fi
  if [ ! -x "$rootfs/bin/bash" ]; then
    echo "debootstrap --variant=minbase $release (once, cached in $rootfs)"
    # An interrupted debootstrap leaves /proc mounted in its target: unmount before removing it.
    for m in $(awk -v d="$rootfs.tmp/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount "$m"; done
    rm -rf "$rootfs" "$rootfs.tmp"
    debootstrap --variant=minbase "$release" "$rootfs.tmp" http://deb.debian.org/debian >"$CACHE/debootstrap-$release.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap-$release.log"; exit 1; }
    mv "$rootfs.tmp" "$rootfs"
  fi
  # Trimmed like the -slim images: no docs, man pages, locales or apt caches.
  tar -C "$rootfs" --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
      --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' -c . \
    | "${P[@]}" import -q - "localhost/scada-standin-rootfs:$release" >/dev/null
}
for release in bookworm $stack $EXT_RELEASE; do
  have "docker.io/library/debian:$release-slim" || rootfs_image "$release"
done
if ! "${P[@]}" run --rm "${ULIMITS[@]}" --network=host localhost/scada-standin-rootfs:bookworm true 2>/dev/null \
   && ! "${P[@]}" run --rm "${ULIMITS[@]}" --network=host docker.io/library/debian:bookworm-slim true 2>/dev/null; then
  ULIMITS=(--ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" --ulimit nproc=8192:8192)
fi
BUILD=("${P[@]}" build --pull=never --format docker --network host "${ULIMITS[@]}")
# Health checks run on demand (`podman healthcheck run`): without systemd,
# podman cannot schedule them and says so on every start; keep that out of the log.
RUN=(run_quiet "${P[@]}" run "${ULIMITS[@]}" --network=host)
run_quiet() { "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

standin() { # image-name containerfile context [build args...]
  local image=$1 file=$2 context=$3; shift 3
  if have "$image"; then return; fi
  echo "stand-in for $image"
  "${BUILD[@]}" -q -t "$image" -f "$file" "$@" "$context" >/dev/null
}
debian_standin() { # release
  local image="docker.io/library/debian:$1-slim"
  have "$image" && return
  # This machine's extra CA certificates (a TLS-intercepting egress proxy)
  # go into the stand-in, as a company mirror of the base image would carry them.
  local ctx="$CACHE/standin-debian-$1"
  rm -rf "$ctx" && mkdir -p "$ctx/extra-ca"
  cp docker/standins/debian.Containerfile "$ctx/Containerfile"
  cp "docker/standins/debian-$1.sources" "$ctx/debian.sources"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
  standin "$image" "$ctx/Containerfile" "$ctx" --build-arg "RELEASE=$1"
  rm -rf "$ctx"
}
debian_standin bookworm
debian_standin "$stack"
debian_standin "$EXT_RELEASE"
standin "$REDIS_IMAGE" docker/standins/redis.Containerfile docker/standins \
  --build-arg "BASE=$DEBIAN_IMAGE" --build-arg "SERVER=$REDIS_SERVER" --build-arg "SERVER_USER=$REDIS_USER"
if ! have docker.io/sockudo/sockudo:5.2.0; then
  ctx="$CACHE/standin-sockudo"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$(command -v sockudo || echo "$HOME/.cargo/bin/sockudo")" "$ctx/sockudo"
  cp docker/standins/sockudo.Containerfile "$ctx/Containerfile"
  standin docker.io/sockudo/sockudo:5.2.0 "$ctx/Containerfile" "$ctx"
  rm -rf "$ctx"
fi

# --- 2. the binaries, compiled once --------------------------------------------
PREBUILT="$ROOT/docker/prebuilt"
drop_prebuilt() { rm -f "$PREBUILT/scada-sidecar" "$PREBUILT/libscada_broadcast.so"; }
trap drop_prebuilt EXIT
host_is() { # release php-version: this host is that Debian release with that PHP
  [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = "$1" ] \
    && [ "$(php-config --version 2>/dev/null | cut -d. -f1,2)" = "$2" ]
}
container_cargo() { # release php-version crate: cargo build --release in a container of that release
  local release=$1 php=$2 crate=$3 builder="localhost/scada-builder:$1-php$2"
  have "$builder" || standin "$builder" docker/standins/builder.Containerfile docker/standins \
    --build-arg "BASE=docker.io/library/debian:$release-slim" --build-arg "PHP_VERSION=$php"
  mkdir -p "$CACHE/target-$release-php$php" "${CARGO_HOME:-$HOME/.cargo}/registry"
  "${P[@]}" run --rm "${ULIMITS[@]}" --network=host \
    -v "$ROOT:/src:ro" -v "$(rustc --print sysroot):/opt/rust:ro" \
    -v "${CARGO_HOME:-$HOME/.cargo}/registry:/cargo/registry" -v "$CACHE/target-$release-php$php:/target" \
    -e CARGO_HOME=/cargo -e CARGO_TARGET_DIR=/target -e PATH=/opt/rust/bin:/usr/sbin:/usr/bin:/sbin:/bin -w /src \
    "$builder" cargo build --release --locked --offline -p "$crate"
  echo "$CACHE/target-$release-php$php/release"
}
step "binaries: the sidecar (bookworm), the extension for PHP $PHP_VERSION ($EXT_RELEASE)"
t0=$(date +%s)
if host_is bookworm 8.2 || host_is "$EXT_RELEASE" "$PHP_VERSION"; then
  # Fetches the crates the container builds read (offline) too.
  cargo build --release --workspace
fi
if host_is bookworm 8.2; then sidecar_dir="$ROOT/target/release"
else sidecar_dir=$(container_cargo bookworm 8.2 scada-sidecar | tail -1); fi
if host_is "$EXT_RELEASE" "$PHP_VERSION"; then ext_dir="$ROOT/target/release"
else ext_dir=$(container_cargo "$EXT_RELEASE" "$PHP_VERSION" scada-broadcast-ext | tail -1); fi
strip -o "$PREBUILT/scada-sidecar" "$sidecar_dir/scada-sidecar"
strip -o "$PREBUILT/libscada_broadcast.so" "$ext_dir/libscada_broadcast.so"
echo "binaries ready in $(( $(date +%s) - t0 ))s"

# --- 3. the real images -----------------------------------------------------
# No Rust toolchain in the image builds: RUST_IMAGE stays the plain Debian
# image, the build stages copy docker/prebuilt/.
STACK_ARGS=(--build-arg "DEBIAN_RELEASE=$stack" --build-arg "PHP_VERSION=$PHP_VERSION"
  --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --build-arg "RUST_IMAGE=$DEBIAN_IMAGE"
  --build-arg "SIDECAR_RUST_IMAGE=docker.io/library/debian:bookworm-slim" --build-arg "REDIS_SERVER=$REDIS_SERVER")
build_target() { # target tag [build args...]
  local target=$1 tag=$2; shift 2
  step "podman build --target $target (docker/Dockerfile) -> scada-broadcast/$target:$tag"
  local t0
  t0=$(date +%s)
  "${BUILD[@]}" -f docker/Dockerfile --target "$target" -t "scada-broadcast/$target:$tag" "$@" . >"$CACHE/build-$target-$tag.log" 2>&1 \
    || { tail -40 "$CACHE/build-$target-$tag.log"; exit 1; }
  echo "built scada-broadcast/$target:$tag in $(( $(date +%s) - t0 ))s"
}
# The sidecar image is bookworm's on every stack (the binary does not link PHP).
build_target sidecar latest --build-arg "SIDECAR_RUST_IMAGE=docker.io/library/debian:bookworm-slim"
build_target php "$TAG" "${STACK_ARGS[@]}"
build_target tests "$TAG" "${STACK_ARGS[@]}" --build-arg "TESTS_EXTRA_PACKAGES=$([ "$EXT_CHECKS" = 1 ] && echo valgrind)"

if [ "$build_only" = 1 ]; then step "images built"; exit 0; fi

size() { "${P[@]}" image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
base=$(size docker.io/library/debian:bookworm-slim)
step "image sizes"
for image in docker.io/library/debian:bookworm-slim "$DEBIAN_IMAGE" scada-broadcast/sidecar:latest "scada-broadcast/php:$TAG" "scada-broadcast/tests:$TAG"; do
  printf '  %-42s %s\n' "$image" "$(mb "$(size "$image")")"
done
over=$(( $(size scada-broadcast/sidecar:latest) - base ))
echo "  sidecar image over its base: $(mb "$over") (target: <= 40 MB)"
[ "$over" -le 40000000 ] || { echo "docker-test: the sidecar image grew over 40 MB above its base" >&2; exit 1; }

# --- 4. what the images promise ---------------------------------------------
step "checks"
sidecar_uid=$("${RUN[@]}" --rm --entrypoint id scada-broadcast/sidecar:latest -u)
php_uid=$("${RUN[@]}" --rm scada-broadcast/php:$TAG id -u)
echo "  sidecar runs as uid $sidecar_uid, php as uid $php_uid"
[ "$sidecar_uid" != 0 ] && [ "$php_uid" != 0 ] || { echo "docker-test: an image runs as root" >&2; exit 1; }
build_id=$("${RUN[@]}" --rm scada-broadcast/php:$TAG php -i | grep 'PHP Extension Build')
modules=$("${RUN[@]}" --rm scada-broadcast/php:$TAG sh -c 'php -m; php-fpm -m')
ini=$("${RUN[@]}" --rm scada-broadcast/php:$TAG php --ini | grep scada_broadcast)
echo "  $build_id; php and php-fpm load: $(echo "$modules" | grep -c '^scada_broadcast$') of 2; ini: $ini"
[ "$(echo "$modules" | grep -c '^scada_broadcast$')" = 2 ] || { echo "docker-test: the extension is not loaded by php and php-fpm" >&2; exit 1; }
"${RUN[@]}" --rm scada-broadcast/php:$TAG php -r 'new Scada\Broadcasting\ScadaBroadcastingService(); echo "  ScadaBroadcastingService constructs in the php image\n";'

# --- 5. the compose stack, service by service ---------------------------------
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
trap 'cleanup; drop_prebuilt' EXIT
common_env=(-e REDIS_HOST=127.0.0.1 -e "REDIS_PORT=$REDIS_PORT"
  -e PUSHER_APP_ID=scada-app -e PUSHER_APP_KEY=scada-key -e "PUSHER_APP_SECRET=$SECRET"
  -e PUSHER_HOST=127.0.0.1 -e "PUSHER_PORT=$PUSHER_PORT" -e PUSHER_SCHEME=http)

step "stack: $REDIS_SERVER, sockudo, sidecar, php-fpm $PHP_VERSION (restart=unless-stopped)"
"${RUN[@]}" -d --name "$project-redis" --restart unless-stopped "$REDIS_IMAGE" \
  "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null
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
FPM_PORT=$(free_port)
# The suite's FPM test asks this php-fpm to run tests/bin/fpm-broadcast.php (read-only mount).
"${RUN[@]}" -d --name "$project-php" --restart unless-stopped "${common_env[@]}" -e "PHP_FPM_LISTEN=127.0.0.1:$FPM_PORT" \
  -v "$project-run:/run/scada-broadcast" -v "$ROOT/tests:/opt/scada-broadcast/tests:ro" "scada-broadcast/php:$TAG" >/dev/null
wait_healthy "$project-php" 30
"${RUN[@]}" --rm "${common_env[@]}" -v "$project-run:/run/scada-broadcast" scada-broadcast/php:$TAG \
  php -r '$ok = (new Scada\Broadcasting\ScadaBroadcastingService())->broadcast("docker-smoke", "ping", ["from" => "php image"]); echo "  php container -> sidecar socket: ", $ok ? "accepted" : "refused", "\n"; exit($ok ? 0 : 1);'
echo "  sidecar: $("${P[@]}" exec "$project-sidecar" scada-sidecar --health)"

# --- 6. the PHPUnit suites in the tests container ------------------------------
step "phpunit --testsuite $suites (in scada-broadcast/tests)"
t0=$(date +%s)
"${RUN[@]}" --rm --name "$project-tests" "${common_env[@]}" -e SCADA_STACK=external \
  -e "SCADA_SIDECAR_SOCKET=/run/scada-broadcast/sidecar.sock" -e "PHP_FPM_ADDR=127.0.0.1:$FPM_PORT" \
  -v "$project-run:/run/scada-broadcast" \
  "scada-broadcast/tests:$TAG" phpunit -c tests/phpunit.xml $NO_RESULT_CACHE --testsuite "$suites"
echo "suites ran in $(( $(date +%s) - t0 ))s"

if [ "$suites" != stack ]; then
  # Bookworm's PHP 8.2 runs the extension's scripts natively (cargo test, ext/tests/php.rs).
  scripts='php tests/bin/stubs.php --check'
  [ "$stack" = bookworm ] || scripts='status=0; tests/bin/ext-scripts.sh ext/tests/php || status=1; php tests/bin/stubs.php --check || status=1; exit $status'
  [ "$EXT_CHECKS" = 1 ] && scripts="tests/bin/ext-scripts.sh --valgrind ext/tests/php || exit 1; $scripts"
  step "on PHP $PHP_VERSION: $([ "$stack" = bookworm ] || echo "the extension's PHP scripts (ext/tests/php$([ "$EXT_CHECKS" = 1 ] && echo ", under valgrind too")), ")the IDE stubs check"
  t0=$(date +%s)
  "${RUN[@]}" --rm "scada-broadcast/tests:$TAG" sh -c "$scripts"
  echo "scripts and stubs check ran in $(( $(date +%s) - t0 ))s"
  if [ "$EXT_CHECKS" = 1 ]; then
    # The chaos scenarios that exercise the extension (the others exercise the
    # sidecar, the same binary on every stack). Root with CAP_SYS_ADMIN: FullDiskTest
    # mounts a tmpfs of a few MB to fill (a --tmpfs mount is not enough: it
    # mounts one per test, and an unprivileged container cannot mount at all).
    step "on PHP $PHP_VERSION: chaos 4, 5, 6 (SCADA_FUZZ_CALLS=300000), 7, 20 and FullDiskTest (suite chaos, self-contained)"
    t0=$(date +%s)
    "${RUN[@]}" --rm --name "$project-tests" --user root --cap-add SYS_ADMIN -e SCADA_FUZZ_CALLS=300000 \
      "scada-broadcast/tests:$TAG" phpunit -c tests/phpunit.xml $NO_RESULT_CACHE --testsuite chaos \
      --filter '/test_(4|5|6|7|20)_|FullDiskTest/'
    echo "chaos scenarios ran in $(( $(date +%s) - t0 ))s"
  fi
fi

"${P[@]}" logs "$project-sidecar" 2>&1 | grep -F "$SECRET" && { echo "docker-test: the secret reached the sidecar's log" >&2; exit 1; }
step "done"
