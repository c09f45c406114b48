#!/usr/bin/env bash
# Runs the whole test suite against a throwaway PostgreSQL cluster started here and
# stopped (and deleted) on exit, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
bin="$(swift build --show-bin-path)"

# Python test helpers live in a virtual environment of their own, never the system's.
venv=.build/test-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check openapi-spec-validator==0.9.0 aiosmtpd==1.4.6 oidc-provider-mock==0.3.4 \
  schemathesis==4.32.5

scratch="$(mktemp -d /tmp/atrium-test.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_TEST_DATA_DIR="$scratch/.atrium"
export ATRIUM_BINARY="$bin/atrium"
export ATRIUM_TEST_PYTHON="$PWD/$venv/bin/python"
cleanup() {
  ATRIUM_DATA_DIR="$ATRIUM_TEST_DATA_DIR" "$bin/atrium" db stop >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
ATRIUM_DATA_DIR="$ATRIUM_TEST_DATA_DIR" "$bin/atrium" db start

log="$scratch/swift-test.log"
set +e
swift test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain summary line for CI, from Swift Testing's own count.
summary="$(grep -E 'Test run with [0-9]+ tests?' "$log" | tail -n 1)"
total="$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")"
failed="$(grep -E '^✘ Test .* failed after' "$log" | grep -vc '^✘ Test run with' || true)"
if [ -n "$summary" ]; then
  echo "$((total - failed)) passed, $failed failed"
fi
# A run that executed no test proves nothing: a filter that matched nothing, or a
# runner that never started, is a failure.
if [ "$status" -eq 0 ] && { [ -z "$summary" ] || [ "${total:-0}" -eq 0 ]; }; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
