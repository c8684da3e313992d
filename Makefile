# skiff: `make run` starts the daemon, `make test` runs every test. Both install what is missing
# first (scripts/setup.sh: apt packages as root, node_modules) and rebuild dist/ only when a
# source changed.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

NODE ?= node
# Extra arguments for the daemon: make run ARGS='--config skiff.toml'
ARGS ?=

# Everything tsc compiles (tsconfig.json: src/**/*.ts without tests). Directories are listed too,
# so adding or removing a file triggers a rebuild.
BUILD_INPUTS := $(shell find src -name '*.ts' ! -name '*.test.ts' 2>/dev/null) \
	$(shell find src -type d 2>/dev/null) tsconfig.json package-lock.json
BUILD_STAMP := dist/.build-stamp

.PHONY: setup build run test test-unit test-integration bench soak gen clean

## setup: install missing system packages and node_modules (idempotent, quiet when done)
setup:
	@scripts/setup.sh

## build: compile src/ into dist/ when a source changed, the static pause program and the spawner
PAUSE_BIN := dist/native/pause
SPAWNER_BIN := dist/native/skiff-spawner
PORTRELAY_BIN := dist/native/skiff-portrelay
build: $(BUILD_STAMP) $(PAUSE_BIN) $(SPAWNER_BIN) $(PORTRELAY_BIN)

$(PAUSE_BIN): native/pause.c | setup
	@mkdir -p $(dir $@)
	gcc -Os -static -Wall -Wextra -o $@ native/pause.c

$(SPAWNER_BIN): native/spawner.c | setup
	@mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -Werror -o $@ native/spawner.c

$(PORTRELAY_BIN): native/portrelay.c | setup
	@mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -Werror -pthread -o $@ native/portrelay.c

# The stamp is only written when tsc succeeds, so a failed build is retried next time.
# setup is order-only: it runs first but does not force a rebuild by itself.
$(BUILD_STAMP): $(BUILD_INPUTS) | setup
	@echo "build: tsc"
	@npm run --silent build
	@touch $@

## run: build, then start the daemon in the foreground with its built-in defaults
run: build
	$(NODE) dist/cmd/skiffd.js $(ARGS)

## test: every test: unit, then integration with a leak check (scripts/test.sh)
test: build
	@echo "typecheck: tests, benchmarks and scripts"
	@npm run --silent typecheck:tests
	@scripts/test.sh all

test-unit: setup
	@scripts/test.sh unit

# Integration tests may start the built daemon, so they need dist/.
test-integration: build
	@scripts/test.sh integration

## bench: run each bench/*.bench.ts (all of them; fails at the end if one failed)
bench: build
	@shopt -s nullglob; files=(bench/*.bench.ts); rc=0; \
	if [[ $${#files[@]} -eq 0 ]]; then echo "bench: no bench/*.bench.ts files yet"; exit 0; fi; \
	for f in "$${files[@]}"; do echo "==> $$f"; $(NODE) --import tsx "$$f" || { echo "bench: $$f failed"; rc=1; }; done; \
	exit $$rc

## soak: the full reliability scenarios in test/soak/ (20 pods, 200 lifecycles, containerd side by side; prints a table)
soak: build
	@shopt -s nullglob; files=(test/soak/*.test.ts); \
	if [[ $${#files[@]} -eq 0 ]]; then echo "soak: no test/soak/*.test.ts files yet"; exit 0; fi; \
	$(NODE) --import tsx --test --test-concurrency=1 --test-reporter=spec "$${files[@]}"

## gen: regenerate src/gen/ from proto/ (buf generate)
gen: setup
	npm run gen

## clean: remove build output
clean:
	rm -rf dist .tmp
