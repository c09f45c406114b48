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
# TLS on the same cluster, with a certificate for "localhost": the second run below
# reaches it over TCP and TLS (sslmode=verify-full), as production reaches its PostgreSQL.
ATRIUM_TEST_SSLROOTCERT="$(scripts/cluster-tls.sh "$ATRIUM_TEST_DATA_DIR")"
export ATRIUM_TEST_SSLROOTCERT

# Runs `swift test` with the given arguments, appending its output to the log; returns its status.
log="$scratch/swift-test.log"
run_tests() {
  local status
  set +e
  # A run that hangs fails here, after 30 minutes (a full run takes about 5), and says
  # so, rather than at CI's 90-minute limit with nothing to show.
  timeout -k 30s 30m swift test --skip-build "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then echo "swift test did not finish within 30 minutes" >&2; fi
  return "$status"
}
status=0
run_tests "$@" || status=$?
# The request path, the module kit and Sales once more over TLS; with arguments (a filter
# of one's own), only the run asked for.
if [ "$#" -eq 0 ]; then
  echo "=== the request path, the module kit and Sales again, over TCP and TLS (sslmode=verify-full) ==="
  ATRIUM_TEST_DATABASE_TLS=1 run_tests --filter \
    'AtriumCoreTests\.(PipelinedBeginTests|DatabaseFaultTests|ModuleKitTests|GuestbookModuleTests|ModuleGuideTests|DatabaseTLSTests)|AtriumSalesTests' \
    || status=$?
fi
# One plain summary line for CI, from Swift Testing's own counts, both runs added up.
total="$(grep -E 'Test run with [0-9]+ tests?' "$log" | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' | awk '{ s += $1 } END { print s + 0 }')"
runs="$(grep -cE 'Test run with [0-9]+ tests?' "$log" || true)"
failed="$(grep -E '^✘ Test .* failed after' "$log" | grep -vc '^✘ Test run with' || true)"
if [ "${runs:-0}" -gt 0 ]; then
  echo "$((total - failed)) passed, $failed failed"
fi
# A run that executed no test proves nothing: a filter that matched nothing, or a
# runner that never started, is a failure.
if [ "$status" -eq 0 ] && { [ "${runs:-0}" -eq 0 ] || [ "${total:-0}" -eq 0 ]; }; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
