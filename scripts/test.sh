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
  schemathesis==4.32.5 aiohttp==3.12.15 ccxt==4.5.6

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

# Swift Testing starts every test at once unless told otherwise: on two cores, some 300
# tests contending for the CPU and for PostgreSQL's connections (500) ran out of both,
# and tests that watch a clock (leases, event streams) failed for want of a turn. A few
# tests per core keep the machine busy without starving any of them.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${ATRIUM_TEST_PARALLELISM:-$(( $(nproc) * 6 ))}"

# Runs `swift test` with the given arguments, appending its output to the log; returns its status.
log="$scratch/swift-test.log"
started_runs=0
run_tests() {
  local status watchdog
  started_runs=$((started_runs + 1))
  set +e
  # A run that prints nothing for five minutes is stuck (no test takes one alone): the
  # watchdog names the tests that never finished and what they waited on, and ends it.
  scripts/test-watchdog.sh "$log" $$ 300 &
  watchdog=$!
  # Whatever else hangs fails here, after 30 minutes (a full run takes about 5), and says
  # so, rather than at CI's 90-minute limit with nothing to show.
  # Line-buffered: into a pipe the tests' output would otherwise leave in 4 KiB blocks,
  # and a healthy run whose last test works for minutes would look silent to the watchdog.
  timeout -k 30s 30m stdbuf -oL -eL swift test --skip-build "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
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
if [ "${runs:-0}" -lt "$started_runs" ]; then
  echo "$((started_runs - ${runs:-0})) of $started_runs test runs did not finish: their tests are not counted above" >&2
fi
# A stuck run's report again, last, where CI's tail shows it.
if [ -f "$log.stalled" ]; then
  cat "$log.stalled" >&2
  status=1
fi
# A run that executed no test proves nothing: a filter that matched nothing, or a
# runner that never started, is a failure.
if [ "$status" -eq 0 ] && { [ "${runs:-0}" -eq 0 ] || [ "${total:-0}" -eq 0 ]; }; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
