# scada-broadcast: every entry point a newcomer or CI needs.
#   make demo   - the live dashboard demo (installs what is missing, builds, runs; prints the URL)
#   make test   - every Rust and PHP test
#   make bench  - the benchmark figures quoted in the README
#   make docker-test - the docker/ images built with podman, the suites run in containers,
#                      on every stack (STACKS="bookworm trixie sid": PHP 8.2/8.4, Laravel 8/10/13)
SHELL := /bin/bash
ROOT := $(CURDIR)
EXT := $(ROOT)/target/release/libscada_broadcast.so
PHPUNIT := php -d extension=$(EXT) -d zend.assertions=1 -d assert.exception=1 /usr/bin/phpunit
STACKS ?= bookworm trixie sid

.PHONY: all deps build test rust-test phpunit js-test dashboard-assets demo-throughput stubs stubs-check docker-test lint fmt demo bench clean

all: build

deps:
	tests/bin/install-deps.sh

build: deps
	cargo build --release --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

rust-test: build
	cargo test --release --workspace

phpunit: build
	$(PHPUNIT) -c tests/phpunit.xml

# The Echo SSE connector (php/resources/js) under node with laravel-echo 1.x and 2.x;
# the dashboard page (php/resources/dashboard) in headless chromium, its logic, its vendored assets.
js-test: build
	cd tests/js/echo-sse && node --test connector.test.mjs
	cd tests/js/dashboard && node --test model.test.mjs vendor.test.mjs dashboard.test.mjs plant.test.mjs backlog.test.mjs

# The dashboard's vendored npm assets (php/resources/dashboard/vendor/, committed): rebuilt from the lock file.
dashboard-assets:
	tests/bin/build-dashboard-assets.sh

# The IDE stubs (php/stubs/) must be what the built extension declares.
stubs-check: build
	php -d extension=$(EXT) tests/bin/stubs.php --check

stubs: build
	php -d extension=$(EXT) tests/bin/stubs.php --write

docker-test:
	@for stack in $(STACKS); do \
	  start=$$(date +%s); docker/test.sh --stack $$stack || exit 1; \
	  echo "== docker-test $$stack: $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"; \
	done

test: build lint rust-test phpunit js-test stubs-check docker-test

# The live dashboard at once over SSE: Sockudo is not waited for (its ~8 minute
# build is skipped); when it is installed, the pusher-js path is shown too.
demo:
	tests/bin/install-deps.sh --no-sockudo
	cargo build --release --workspace
	tests/demo/run.sh

# The whole path at full speed (Redis + Sockudo + pusher-js), checked end to end.
demo-throughput: build
	tests/demo/throughput.sh

bench: build
	tests/bench/run.sh

clean:
	cargo clean
