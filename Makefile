# Atrium: `make run` serves the API, `make test` runs every test. Both install the
# Debian packages they need first (with sudo when not run as root).

SHELL := /bin/bash
SWIFT_BUILD_FLAGS ?=
DEBIAN_PACKAGES := postgresql postgresql-client libargon2-dev libcurl4-openssl-dev python3-venv

.PHONY: run test build deps bench clean-data

deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

build: deps
	swift build $(SWIFT_BUILD_FLAGS) --product atrium

run: build
	"$$(swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)/atrium" serve

test: deps
	scripts/test.sh

bench: deps
	scripts/install-deps.sh wrk curl
	bench/run.sh

# Removes the embedded database of `make run` (all local data).
clean-data:
	rm -rf .atrium
