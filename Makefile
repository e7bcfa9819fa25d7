# Pulse: the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
# Debian installs clickhouse-server in /usr/sbin, which is not on every user's PATH.
export PATH := $(PATH):/usr/sbin
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/pulse
# Test packages run one ClickHouse each; keep the whole run well inside CI's budget.
TEST_TIMEOUT ?= 10m

.PHONY: run build test vet bench clickhouse chromium clean

## run: install ClickHouse when missing, build, start `pulse dev --demo` (Ctrl-C stops everything)
run: clickhouse build
	./$(BIN) dev --demo

## build: the tracker and the dashboard (embedded in the binary), then bin/pulse
build: node_modules/.package-lock.json
	node sdk-js/build.mjs
	node dashboard/web/build.mjs
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pulse

## test: vet and every test, including the ones against a real ClickHouse
test: clickhouse chromium node_modules/.package-lock.json vet
	node --test sdk-js/test/unit/
	node dashboard/web/build.mjs --check
	node --test dashboard/web/test/format.test.mjs
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	node --test --test-concurrency=1 sdk-js/test/browser/
	node --test --test-concurrency=1 dashboard/web/test/dashboard.test.mjs

## node_modules: npm packages of the lockfile (test fixtures, later the tracker and dashboard builds)
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

vet:
	$(GO) vet ./...

## bench: benchmarks, one JSON line per figure (see docs/benchmarks.md)
bench: clickhouse node_modules/.package-lock.json
	@set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count 1 -p 1 -timeout 60m ./... | $(GO) run ./internal/benchjson

## chromium: Debian's chromium for the browser tests
chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests drive it)" >&2; exit 1; \
	fi

## clickhouse: make sure a clickhouse-server binary is on PATH
clickhouse:
	@if command -v clickhouse-server >/dev/null || command -v clickhouse >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing clickhouse-server from Debian"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clickhouse-server; \
	else \
		echo "ClickHouse is missing: run 'sudo apt-get install clickhouse-server' (or point --clickhouse at a running server)" >&2; exit 1; \
	fi

clean:
	rm -rf bin
