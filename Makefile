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
install: build
	@bin="$$(swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)/atrium"; \
	  if [ -w "$(PREFIX)/bin" ]; then install -m 755 "$$bin" "$(PREFIX)/bin/atrium"; \
	  else sudo install -m 755 "$$bin" "$(PREFIX)/bin/atrium"; fi; \
	  echo "installed $(PREFIX)/bin/atrium"

test: deps
	scripts/test.sh

bench: deps
	scripts/install-deps.sh wrk curl
	bench/run.sh

# Removes the embedded database of `make run` (all local data).
clean-data:
	rm -rf .atrium
