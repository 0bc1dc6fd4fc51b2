# Cove — the two commands a new user needs are `make demo` and `make test`; each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := .system-deps

.PHONY: demo test lint typecheck pytest test-ts bench serve clean system-deps install

# Debian packages the sandbox runtime needs: bubblewrap, setpriv (util-linux), ps/pkill (procps), and mkfs.btrfs
# (btrfs-progs) for the btrfs storage driver's tests and benchmark, which make a loopback btrfs. Networking:
# libnftables (the "egress" mode's firewall, driven in-process; the nft command comes with it), iproute2 (the tests'
# network namespaces and test hosts), and pasta (passt), which the network benchmark measures veth against.
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

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/cove

pytest: $(STAMP)
	$(BIN)/pytest -n auto -q

# The TypeScript SDK's tests run against a real server from the .venv, so they need the install too.
test-ts: $(STAMP)
	cd sdks/typescript && npm ci && npm test

test: lint typecheck pytest test-ts

demo: $(STAMP)
	$(BIN)/python -m cove.demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

serve: $(STAMP)
	$(BIN)/cove serve

clean:
	rm -rf $(VENV) $(SYSTEM_STAMP) .pytest_cache .mypy_cache .ruff_cache
