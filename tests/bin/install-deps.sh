#!/usr/bin/env bash
# Installs every system package, tool and npm module scada-broadcast needs on Debian 12.
# Idempotent: each step is skipped when what it installs is already present.
#   tests/bin/install-deps.sh            # everything for build + tests + demo
#   tests/bin/install-deps.sh --no-sockudo
#   tests/bin/install-deps.sh --docker   # also podman, runc, debootstrap (make docker-test)
set -euo pipefail
cd "$(dirname "$0")/../.."

want_sockudo=1
want_docker=0
for arg in "$@"; do
  case "$arg" in
    --no-sockudo) want_sockudo=0 ;;
    --docker) want_docker=1 ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  php8.2-cli php8.2-dev php8.2-curl php8.2-mbstring php8.2-xml
  php8.2-fpm libfcgi-bin
  libclang-dev clang pkg-config
  phpunit php-laravel-framework php-redis php-predis php-mockery
  redis-server redis-tools
  protobuf-compiler libprotobuf-dev
  curl ca-certificates python3
  valgrind
  chromium
)

# Containers without a Docker engine: podman (runc runtime) and debootstrap
# for a local Debian base image when none can be pulled.
if [ "$want_docker" = 1 ]; then
  APT_PACKAGES+=(podman runc debootstrap)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (nodesource bundles npm): only ask Debian when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A Debian redis-server package may start a system instance; tests start their own on free ports.

# pusher-js: the real browser-side client used by tests and the demo (run under node).
if [ ! -d tests/js/node_modules/pusher-js ] || [ ! -d tests/js/node_modules/laravel-echo ]; then
  echo "install-deps: npm install (tests/js)"
  (cd tests/js && npm install --no-audit --no-fund --silent)
fi
# laravel-echo and the eventsource polyfill for the Echo SSE connector's node tests (make js-test).
if [ ! -d tests/js/echo-sse/node_modules/laravel-echo-1 ]; then
  echo "install-deps: npm ci (tests/js/echo-sse)"
  (cd tests/js/echo-sse && npm ci --no-audit --no-fund --silent)
fi

# puppeteer-core (the dashboard's browser tests, with Debian's chromium) and the dashboard's npm assets.
if [ ! -d tests/js/dashboard/node_modules/puppeteer-core ]; then
  echo "install-deps: npm ci (tests/js/dashboard)"
  (cd tests/js/dashboard && npm ci --no-audit --no-fund --silent)
fi

# Sockudo: a real Pusher-protocol server. Built once, cached in ~/.cargo/bin.
SOCKUDO_VERSION=5.2.0
if [ "$want_sockudo" = 1 ]; then
  if ! command -v sockudo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/sockudo" ]; then
    echo "install-deps: cargo install sockudo $SOCKUDO_VERSION (about 8 minutes on 2 cores)"
    # A persistent target dir lets an interrupted build resume instead of starting over.
    cargo install sockudo --locked --version "$SOCKUDO_VERSION" --no-default-features --features local \
      --target-dir "${XDG_CACHE_HOME:-$HOME/.cache}/scada-broadcast/sockudo-build"
  fi
fi
echo "install-deps: done"
