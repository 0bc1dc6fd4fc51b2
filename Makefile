# Cove — the two commands a new user needs are `make demo` and `make test`; each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := .system-deps

UI_BUILT := src/cove/inspector/index.html
# What the Inspector is built from: its own sources and lock file, and the SDK modules it shares (events, errors,
# wire types).
UI_SOURCES := ui/package-lock.json ui/build.mjs ui/index.html ui/tsconfig.json $(shell find ui/src -type f 2>/dev/null) \
	sdks/typescript/src/events.ts sdks/typescript/src/errors.ts sdks/typescript/src/types.ts

.PHONY: demo test lint typecheck pytest test-ts test-ui ui screenshots bench serve clean system-deps install

# Debian packages the sandbox runtime needs: bubblewrap, setpriv (util-linux), ps/pkill (procps), and mkfs.btrfs
# (btrfs-progs) for the btrfs storage driver's tests and benchmark, which make a loopback btrfs. Networking:
# libnftables (the "egress" mode's firewall, driven in-process; the nft command comes with it), iproute2 (the tests'
# network namespaces and test hosts), and pasta (passt), which the network benchmark measures veth against. The
# Inspector: npm (its build) and chromium (its tests and benchmark, driven by Playwright without a browser download).
system-deps: $(SYSTEM_STAMP)
# Re-checked whenever this Makefile changes, so a checkout that gains a package here installs it.
$(SYSTEM_STAMP): Makefile
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v setpriv >/dev/null || missing="$$missing util-linux"; \
	command -v pkill >/dev/null || missing="$$missing procps"; \
	command -v mkfs.btrfs >/dev/null || missing="$$missing btrfs-progs"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v pasta >/dev/null || missing="$$missing passt"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

# The Inspector (ui/), built from its lock file into the package, where `cove serve` finds it.
ui: $(UI_BUILT)
$(UI_BUILT): $(UI_SOURCES) | system-deps
	cd ui && npm ci --no-audit --no-fund && npm run build

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/cove

pytest: $(STAMP) ui
	$(BIN)/pytest -n auto -q

# The Inspector's type check (TypeScript strict) and unit tests; its browser tests are in tests/ui (pytest).
test-ui: ui
	cd ui && npm test

# The README's screenshots of the Inspector, taken by its browser tests.
screenshots: $(STAMP) ui
	COVE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/ui

# The TypeScript SDK's tests run against a real server from the .venv, so they need the install too.
test-ts: $(STAMP)
	cd sdks/typescript && npm ci && npm test

test: lint typecheck test-ui pytest test-ts

demo: $(STAMP) ui
	$(BIN)/python -m cove.demo

bench: $(STAMP) ui
	$(BIN)/python -m benchmarks

serve: $(STAMP) ui
	$(BIN)/cove serve

clean:
	rm -rf $(VENV) $(SYSTEM_STAMP) .pytest_cache .mypy_cache .ruff_cache src/cove/inspector ui/node_modules ui/dist-test
