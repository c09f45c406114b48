# Atrium: `make run` serves the API, `make test` runs every test. Both install the
# Debian packages they need first (with sudo when not run as root). `make install`
# puts the `atrium` binary on PATH.

SHELL := /bin/bash
SWIFT_BUILD_FLAGS ?=
DEBIAN_PACKAGES := postgresql postgresql-client libargon2-dev libcurl4-openssl-dev python3-venv openssl

PREFIX ?= /usr/local

.PHONY: run test build deps bench clean-data install

deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

build: deps
	swift build $(SWIFT_BUILD_FLAGS) --product atrium

run: build
	@bin="$$(swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)/atrium"; \
	  echo "atrium is $$bin; 'make install' puts it on your PATH ($(PREFIX)/bin) for the other commands."; \
	  exec "$$bin" serve

# Copies the built binary to $(PREFIX)/bin (migrations and templates are inside it).
# Makes $(PREFIX)/bin when missing; without write access it uses sudo, and says so when
# there is none. It says "installed" only once the binary is there.
install: build
	@set -e; bin="$$(swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)/atrium"; dest="$(PREFIX)/bin"; \
	  if mkdir -p "$$dest" 2>/dev/null && [ -w "$$dest" ]; then install -m 755 "$$bin" "$$dest/atrium"; \
	  elif command -v sudo >/dev/null 2>&1; then sudo install -D -m 755 "$$bin" "$$dest/atrium"; \
	  else echo "cannot write $$dest and there is no sudo: try make install PREFIX=$$HOME/.local" >&2; exit 1; fi; \
	  [ -x "$$dest/atrium" ] || { echo "$$dest/atrium was not installed" >&2; exit 1; }; \
	  echo "installed $$dest/atrium"

test: deps
	scripts/test.sh

bench: deps
	scripts/install-deps.sh wrk curl
	bench/run.sh

# Removes the embedded database of `make run` (all local data).
clean-data:
	rm -rf .atrium
