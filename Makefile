# scada-broadcast: every entry point a newcomer or CI needs.
#   make demo   - the live demo (installs what is missing, builds, runs)
#   make test   - every Rust and PHP test
#   make bench  - the benchmark figures quoted in the README
#   make docker-test - the docker/ images built with podman, the suites run in containers
SHELL := /bin/bash
ROOT := $(CURDIR)
EXT := $(ROOT)/target/release/libscada_broadcast.so
PHPUNIT := php -d extension=$(EXT) -d zend.assertions=1 -d assert.exception=1 /usr/bin/phpunit

.PHONY: all deps build test rust-test phpunit docker-test lint fmt demo bench clean

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

docker-test:
	docker/test.sh

test: build lint rust-test phpunit docker-test

demo: build
	tests/demo/run.sh

bench: build
	tests/bench/run.sh

clean:
	cargo clean
